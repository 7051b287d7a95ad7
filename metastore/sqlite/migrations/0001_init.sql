-- Silt metastore, first schema (SQLite). Mirrors the postgres schema; ids
-- are 16-byte blobs, configs JSON text, times Unix nanoseconds.

CREATE TABLE topics (
    id         BLOB PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    partitions INTEGER NOT NULL CHECK (partitions > 0),
    config     TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE partitions (
    topic_id         BLOB NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    partition        INTEGER NOT NULL,
    high_watermark   INTEGER NOT NULL DEFAULT 0,
    log_start_offset INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (topic_id, partition)
) WITHOUT ROWID;

CREATE TABLE index_entries (
    topic_id    BLOB NOT NULL,
    partition   INTEGER NOT NULL,
    base_offset INTEGER NOT NULL,
    last_offset INTEGER NOT NULL,
    segment_key TEXT NOT NULL,
    position    INTEGER NOT NULL,
    length      INTEGER NOT NULL,
    batch_count INTEGER NOT NULL,
    min_ts      INTEGER NOT NULL,
    max_ts      INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition, base_offset)
) WITHOUT ROWID;

CREATE INDEX index_entries_by_ts ON index_entries (topic_id, partition, max_ts DESC, base_offset);

CREATE TABLE segments (
    key          TEXT PRIMARY KEY,
    agent        TEXT NOT NULL,
    size         INTEGER,
    state        TEXT NOT NULL CHECK (state IN ('uploading', 'committed')),
    recorded_at  INTEGER NOT NULL,
    committed_at INTEGER
);

CREATE INDEX segments_uploading ON segments (recorded_at) WHERE state = 'uploading';

CREATE TABLE producer_ids (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    next INTEGER NOT NULL
);
INSERT INTO producer_ids (only, next) VALUES (1, 1000);

CREATE TABLE consumer_offsets (
    group_id     TEXT NOT NULL,
    topic        TEXT NOT NULL,
    partition    INTEGER NOT NULL,
    "offset"     INTEGER NOT NULL,
    leader_epoch INTEGER NOT NULL,
    metadata     TEXT NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID;

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE agents (
    id         TEXT PRIMARY KEY,
    addr       TEXT NOT NULL,
    zone       TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
