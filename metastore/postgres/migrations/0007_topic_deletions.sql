-- Topic deletions are announced to every agent (NOTIFY silt_topics, in
-- DeleteTopic's transaction) and acknowledged by each: agents.deletions_seen
-- is the last deletion whose effect the agent's topic cache reflects.
-- CreateTopic refuses a name while a live agent has not acknowledged that
-- name's deletion, so no agent can serve the old topic under a name that
-- already means a new one. Deletions are numbered by a counter row, not a
-- sequence, so numbers are committed in order: acknowledging n covers
-- every deletion up to n.
CREATE TABLE topic_deletion_counter (
    id  integer PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL
);
INSERT INTO topic_deletion_counter (id, seq) VALUES (1, 0);

CREATE TABLE topic_deletions (
    seq      bigint PRIMARY KEY,
    topic_id uuid NOT NULL,
    name     text NOT NULL
);
CREATE INDEX topic_deletions_by_name ON topic_deletions (name, seq);

-- RegisterAgent sets it to the current count when it inserts an agent: a
-- new agent's cache starts empty, and it lists the topics again once it
-- listens.
ALTER TABLE agents ADD COLUMN deletions_seen bigint NOT NULL DEFAULT 0;
