-- Silt metastore, first schema.

CREATE TABLE topics (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    partitions integer NOT NULL CHECK (partitions > 0),
    config     jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE partitions (
    topic_id         uuid NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    partition        integer NOT NULL,
    high_watermark   bigint NOT NULL DEFAULT 0,
    log_start_offset bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (topic_id, partition)
);

-- One row per (segment, partition) chunk. No foreign key to partitions:
-- commit_flush has the partition rows locked already, and DeleteTopic
-- deletes index rows explicitly in bulk.
CREATE TABLE index_entries (
    topic_id    uuid NOT NULL,
    partition   integer NOT NULL,
    base_offset bigint NOT NULL,
    last_offset bigint NOT NULL,
    segment_key text NOT NULL,
    position    bigint NOT NULL,
    length      bigint NOT NULL,
    batch_count integer NOT NULL,
    min_ts      bigint NOT NULL,
    max_ts      bigint NOT NULL,
    PRIMARY KEY (topic_id, partition, base_offset)
);

-- ListOffsets by timestamp, and the largest timestamp (earliest on ties).
CREATE INDEX index_entries_by_ts ON index_entries (topic_id, partition, max_ts DESC, base_offset);

CREATE TABLE segments (
    key          text PRIMARY KEY,
    agent        text NOT NULL,
    size         bigint,
    state        text NOT NULL CHECK (state IN ('uploading', 'committed')),
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    committed_at timestamptz
);

CREATE INDEX segments_uploading ON segments (recorded_at) WHERE state = 'uploading';

CREATE SEQUENCE producer_ids START WITH 1000;

CREATE TABLE consumer_offsets (
    group_id     text NOT NULL,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    leader_epoch integer NOT NULL,
    metadata     text NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);

CREATE TABLE leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE TABLE agents (
    id         text PRIMARY KEY,
    addr       text NOT NULL,
    zone       text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- commit_flush, the one-round-trip flush commit, is defined in 0005 (the
-- schema had not shipped before its final form, so it is defined once).
