-- Each agent records the Kafka node id it answers as, so that one given
-- node.id keeps it across restarts, and no two live agents hold the same
-- one: RegisterAgent deletes lapsed agents first, so the unique index only
-- holds live (or not yet expired) ones. NULL for an agent that registered
-- before this migration; its node id is derived from its agent id.
ALTER TABLE agents ADD COLUMN node_id integer;
CREATE UNIQUE INDEX agents_node_id ON agents (node_id);
