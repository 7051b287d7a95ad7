-- Cluster membership has an epoch that moves forward whenever the set of
-- live agents changes (an agent joins, leaves, or its lease lapses). It is
-- the leader epoch of every partition: leadership is derived from
-- membership, so a change of membership is what can move a leader.
CREATE TABLE cluster_membership (
    id    integer PRIMARY KEY CHECK (id = 1),
    epoch bigint NOT NULL
);
INSERT INTO cluster_membership (id, epoch) VALUES (1, 1);

-- commit_flush as in 0002, plus a notification of each commit.
CREATE OR REPLACE FUNCTION commit_flush(
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
    v_state  text;
BEGIN
    SELECT state INTO v_state FROM segments WHERE key = p_segment_key FOR UPDATE;
    IF v_state IS NULL THEN
        RAISE EXCEPTION 'commit_flush: upload % was never recorded, or was forgotten as an orphan', p_segment_key
            USING ERRCODE = 'P0002';
    END IF;
    IF v_state = 'committed' THEN
        SELECT coalesce(array_agg(e.base_offset ORDER BY c.i), '{}') INTO base_offsets
        FROM unnest(p_topic_ids, p_partitions) WITH ORDINALITY AS c(topic_id, partition, i)
        JOIN index_entries e
          ON e.segment_key = p_segment_key AND e.topic_id = c.topic_id AND e.partition = c.partition;
        RETURN;
    END IF;

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

    UPDATE segments
    SET state = 'committed', size = p_size, committed_at = now()
    WHERE key = p_segment_key;

    -- Delivered at COMMIT: other agents fetch the new index rows once per
    -- flush and wake their long polls, instead of polling per fetch.
    PERFORM pg_notify('silt_commits', p_agent || E'\t' || p_segment_key);
END;
$$;
