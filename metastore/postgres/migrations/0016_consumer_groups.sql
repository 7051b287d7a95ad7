-- Consumer groups of KIP-848's protocol (ConsumerGroupHeartbeat) share the
-- consumer_groups table with classic groups: generation is the group
-- epoch, member_ids lists the members (for commit_group_offsets and
-- delete_group), and consumer_state holds the rest as the group package
-- encodes it (members' epochs, assignments and partitions pending
-- revocation, the target assignment), so a coordinator that takes the
-- group over resumes reconciliation where the last one saved it.
ALTER TABLE consumer_groups
    ADD COLUMN group_type     text NOT NULL DEFAULT 'classic',
    ADD COLUMN consumer_state text NOT NULL DEFAULT '';
