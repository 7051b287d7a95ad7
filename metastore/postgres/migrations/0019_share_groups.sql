-- Share groups (KIP-932): one row per share partition (group, topic,
-- partition). start_offset is the share-partition start offset (SPSO):
-- every record below it is acknowledged or archived. batches lists the
-- in-flight records at and above it as JSON runs of offsets in one state:
-- {first, last, state (0 AVAILABLE, 1 ACQUIRED, 2 ACKNOWLEDGED,
-- 4 ARCHIVED), delivery_count, member and lock_until_ms while ACQUIRED}.
-- Every change locks the row (SELECT ... FOR UPDATE), so agents serving
-- share fetches for the same partition never hand one record to two
-- members. Nothing here depends on another migration's objects but
-- topics' ids, kept as uuid like everywhere else (no foreign key: a
-- share partition of a deleted topic is simply never fetched again).
CREATE TABLE share_partitions (
    group_id     text    NOT NULL,
    topic_id     uuid    NOT NULL,
    partition    integer NOT NULL,
    start_offset bigint  NOT NULL,
    batches      text    NOT NULL DEFAULT '[]',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic_id, partition)
);

-- Group configs (Kafka's GROUP config resource: share.auto.offset.reset,
-- share.record.lock.duration.ms, ...), set by IncrementalAlterConfigs
-- whether or not the group exists yet: a JSON object of name → value.
CREATE TABLE group_configs (
    group_id text PRIMARY KEY,
    configs  text NOT NULL DEFAULT '{}'
);
