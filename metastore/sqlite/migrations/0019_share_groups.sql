-- Share groups (KIP-932); see the postgres migration of the same number.
-- SQLite serializes writers (BEGIN IMMEDIATE), which is the row lock.
CREATE TABLE share_partitions (
    group_id     TEXT    NOT NULL,
    topic_id     BLOB    NOT NULL,
    partition    INTEGER NOT NULL,
    start_offset INTEGER NOT NULL,
    batches      TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (group_id, topic_id, partition)
);

-- Group configs; see the postgres migration of the same number.
CREATE TABLE group_configs (
    group_id TEXT PRIMARY KEY,
    configs  TEXT NOT NULL DEFAULT '{}'
);
