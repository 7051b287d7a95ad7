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

-- commit_flush records one flushed segment in one statement (one round trip).
-- The chunk arrays are parallel, one element per chunk. It locks the touched
-- partition rows in (topic_id, partition) order so concurrent flushes never
-- deadlock, then advances each high watermark by its chunk's offset count,
-- inserts the index rows and marks the segment committed.
--
-- If some partitions do not exist, it changes nothing and returns their
-- 1-based positions in the input in "missing" (base_offsets is NULL).
-- Otherwise base_offsets holds each chunk's base offset in input order.
CREATE FUNCTION commit_flush(
    p_segment_key text,
    p_agent       text,
    p_size        bigint,
    p_topic_ids   uuid[],
    p_partitions  integer[],
    p_positions   bigint[],
    p_lengths     bigint[],
    p_counts      bigint[],
    p_batches     integer[],
    p_min_ts      bigint[],
    p_max_ts      bigint[],
    OUT base_offsets bigint[],
    OUT missing      integer[]
) LANGUAGE plpgsql AS $$
DECLARE
    v_n      integer := coalesce(cardinality(p_topic_ids), 0);
    v_locked integer;
BEGIN
    -- ORDER BY is applied before FOR UPDATE, so rows are locked in key order.
    SELECT count(*) INTO v_locked FROM (
        SELECT 1
        FROM partitions p
        JOIN unnest(p_topic_ids, p_partitions) AS c(topic_id, partition)
          ON p.topic_id = c.topic_id AND p.partition = c.partition
        ORDER BY p.topic_id, p.partition
        FOR UPDATE OF p
    ) locked;

    IF v_locked <> v_n THEN
        -- Rows deleted while we waited for the lock are skipped by FOR UPDATE,
        -- so check again now that every surviving row is locked.
        SELECT array_agg(c.i ORDER BY c.i) INTO missing
        FROM unnest(p_topic_ids, p_partitions) WITH ORDINALITY AS c(topic_id, partition, i)
        WHERE NOT EXISTS (
            SELECT 1 FROM partitions p
            WHERE p.topic_id = c.topic_id AND p.partition = c.partition);
        IF missing IS NULL THEN
            RAISE EXCEPTION 'commit_flush: % chunks but % distinct existing partitions (duplicate partition in flush?)', v_n, v_locked
                USING ERRCODE = '22023';
        END IF;
        RETURN;
    END IF;

    WITH c AS (
        SELECT *
        FROM unnest(p_topic_ids, p_partitions, p_positions, p_lengths, p_counts,
                    p_batches, p_min_ts, p_max_ts)
             WITH ORDINALITY AS c(topic_id, partition, position, length, cnt,
                                  batches, min_ts, max_ts, i)
    ), advanced AS (
        UPDATE partitions p
        SET high_watermark = p.high_watermark + c.cnt
        FROM c
        WHERE p.topic_id = c.topic_id AND p.partition = c.partition
        RETURNING c.i, p.high_watermark - c.cnt AS base_offset
    ), indexed AS (
        INSERT INTO index_entries (topic_id, partition, base_offset, last_offset,
                                   segment_key, position, length, batch_count, min_ts, max_ts)
        SELECT c.topic_id, c.partition, a.base_offset, a.base_offset + c.cnt - 1,
               p_segment_key, c.position, c.length, c.batches, c.min_ts, c.max_ts
        FROM advanced a JOIN c ON c.i = a.i
    )
    SELECT coalesce(array_agg(a.base_offset ORDER BY a.i), '{}') INTO base_offsets
    FROM advanced a;

    INSERT INTO segments (key, agent, size, state, recorded_at, committed_at)
    VALUES (p_segment_key, p_agent, p_size, 'committed', now(), now())
    ON CONFLICT (key) DO UPDATE
        SET state = 'committed', size = excluded.size, committed_at = excluded.committed_at;
END;
$$;
