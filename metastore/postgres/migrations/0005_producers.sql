-- Idempotent producers. CommitFlush checks each idempotent batch against
-- the producer's last few batches on that partition, inside the same
-- transaction that assigns offsets, so it holds even when two agents receive
-- batches for one partition (the partition row lock serializes them). The
-- rules are those of metastore.ProducerState.Check, which the sqlite store
-- runs in Go.
CREATE TABLE producer_state (
    producer_id  bigint   NOT NULL,
    topic_id     uuid     NOT NULL,
    partition    integer  NOT NULL,
    epoch        smallint NOT NULL,
    recent_first integer[] NOT NULL, -- oldest first, at most 5
    recent_last  integer[] NOT NULL,
    recent_base  bigint[]  NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (producer_id, topic_id, partition)
);
CREATE INDEX producer_state_by_age ON producer_state (updated_at);

-- commit_flush records one flushed segment in one statement (one round
-- trip), in one transaction:
--   * the segment's upload record guards the commit: an upload never
--     recorded, or forgotten by the orphan janitor (which then deletes the
--     object), is refused (P0002), so no index row points at a deleted
--     object; a segment already committed (a retry after an ambiguous
--     failure) returns already = true and changes nothing;
--   * the touched partition rows are locked in (topic_id, partition) order,
--     so concurrent flushes never deadlock; the segment row is locked first,
--     and nothing locks these in the other order; if partitions are missing
--     nothing changes and their 1-based positions come back in "missing";
--   * each chunk's base offset is its partition's high watermark, which
--     advances by the chunk's offset count; one index row per chunk;
--   * a NOTIFY on silt_commits tells other agents, at COMMIT.
-- Chunks whose batches are listed in the p_b_* arrays (grouped by chunk, in
-- order; p_b_chunk is the 1-based chunk index) are committed batch by batch
-- instead, for idempotent producers. Those chunks are committed batch by batch: each idempotent batch
-- is accepted, recognised as a duplicate (answered with its first offset),
-- refused as out of sequence, or refused as fenced; only accepted batches
-- get offsets, and each run of accepted, contiguous batches becomes one
-- index row. b_verdicts/b_bases answer every listed batch
-- (0 accepted, 1 fenced, 2 duplicate, 3 out of sequence, 4 stale marker). If the segment
-- was already committed, "already" is true and nothing else is returned.
-- A transaction marker (p_b_control; p_b_abort tells an abort from a
-- commit) is accepted only if its producer's transaction is at the
-- marker's epoch and in a state that takes it (metastore.MarkerStates:
-- PrepareCommit for a commit; PrepareAbort, CompleteCommit or
-- CompleteAbort for an abort); otherwise it is stale (4) and changes
-- nothing. An accepted marker leaves a fence (metastore.ProducerState.Mark):
-- its producer's epoch on the partition becomes at least the marker's,
-- inserting a state row if the producer has none there, so a zombie batch
-- of an older epoch committed afterwards, in this flush or a later one, is
-- refused as fenced. (The transactions table is created in 0006; plpgsql
-- resolves it when the function runs.)
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
    p_b_chunk     integer[],
    p_b_pos       bigint[],
    p_b_len       bigint[],
    p_b_cnt       bigint[],
    p_b_min_ts    bigint[],
    p_b_max_ts    bigint[],
    p_b_pid       bigint[],
    p_b_epoch     integer[],
    p_b_seq       integer[],
    p_b_control   boolean[],
    p_b_abort     boolean[],
    OUT base_offsets bigint[],
    OUT missing      integer[],
    OUT b_verdicts   integer[],
    OUT b_bases      bigint[],
    OUT already      boolean
) LANGUAGE plpgsql AS $$
DECLARE
    v_n        integer := coalesce(cardinality(p_topic_ids), 0);
    v_nb       integer := coalesce(cardinality(p_b_chunk), 0);
    v_locked   integer;
    v_state    text;
    v_is       bigint[];
    v_bases    bigint[];
    k          integer;
    m          integer;
    ci         integer := 0;
    v_tid      uuid;
    v_part     integer;
    v_hw       bigint;
    v_verdict  integer;
    v_base     bigint;
    v_last_seq integer;
    v_found    boolean;
    st         record;
    rf         integer[];
    rl         integer[];
    rb         bigint[];
    r_open     boolean := false;
    r_base     bigint;
    r_pos      bigint;
    r_len      bigint;
    r_cnt      bigint;
    r_batches  integer;
    r_min      bigint;
    r_max      bigint;
BEGIN
    already := false;
    b_verdicts := '{}';
    b_bases := '{}';
    SELECT state INTO v_state FROM segments WHERE key = p_segment_key FOR UPDATE;
    IF v_state IS NULL THEN
        RAISE EXCEPTION 'commit_flush: upload % was never recorded, or was forgotten as an orphan', p_segment_key
            USING ERRCODE = 'P0002';
    END IF;
    IF v_state = 'committed' THEN
        already := true;
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

    base_offsets := array_fill(-1::bigint, ARRAY[v_n]);

    -- Chunks without listed batches: one row each, set-based.
    WITH c AS (
        SELECT *
        FROM unnest(p_topic_ids, p_partitions, p_positions, p_lengths, p_counts,
                    p_batches, p_min_ts, p_max_ts)
             WITH ORDINALITY AS c(topic_id, partition, position, length, cnt,
                                  batches, min_ts, max_ts, i)
        WHERE NOT (c.i::integer = ANY (coalesce(p_b_chunk, '{}')))
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
    SELECT array_agg(a.i), array_agg(a.base_offset) INTO v_is, v_bases FROM advanced a;
    FOR k IN 1..coalesce(cardinality(v_is), 0) LOOP
        base_offsets[v_is[k]] := v_bases[k];
    END LOOP;

    -- Chunks with listed batches: batch by batch.
    FOR k IN 1..v_nb + 1 LOOP
        IF k > v_nb OR p_b_chunk[k] <> ci THEN
            IF ci <> 0 THEN
                IF r_open THEN
                    INSERT INTO index_entries (topic_id, partition, base_offset, last_offset,
                                               segment_key, position, length, batch_count, min_ts, max_ts)
                    VALUES (v_tid, v_part, r_base, r_base + r_cnt - 1, p_segment_key, r_pos, r_len, r_batches, r_min, r_max);
                    r_open := false;
                END IF;
                UPDATE partitions SET high_watermark = v_hw WHERE topic_id = v_tid AND partition = v_part;
            END IF;
            EXIT WHEN k > v_nb;
            ci := p_b_chunk[k];
            v_tid := p_topic_ids[ci];
            v_part := p_partitions[ci];
            SELECT high_watermark INTO v_hw FROM partitions WHERE topic_id = v_tid AND partition = v_part;
        END IF;

        v_verdict := 0;
        v_base := -1;
        v_found := false;
        v_last_seq := ((p_b_seq[k]::bigint + p_b_cnt[k] - 1) % 2147483648)::integer;
        IF p_b_pid[k] >= 0 THEN
            SELECT s.epoch, s.recent_first, s.recent_last, s.recent_base INTO st
            FROM producer_state s
            WHERE s.producer_id = p_b_pid[k] AND s.topic_id = v_tid AND s.partition = v_part;
            v_found := FOUND;
            IF p_b_control[k] THEN
                IF NOT EXISTS (
                    SELECT 1 FROM transactions t
                    WHERE t.producer_id = p_b_pid[k] AND t.epoch = p_b_epoch[k]
                      AND t.state = ANY (CASE WHEN p_b_abort[k]
                                              THEN ARRAY['PrepareAbort', 'CompleteCommit', 'CompleteAbort']
                                              ELSE ARRAY['PrepareCommit'] END)) THEN
                    v_verdict := 4;
                END IF;
            ELSIF v_found THEN
                IF p_b_epoch[k] < st.epoch THEN
                    v_verdict := 1;
                ELSIF p_b_epoch[k] > st.epoch THEN
                    IF p_b_seq[k] <> 0 THEN
                        v_verdict := 3;
                    END IF;
                ELSE
                    FOR m IN 1..coalesce(cardinality(st.recent_first), 0) LOOP
                        IF st.recent_first[m] = p_b_seq[k] AND st.recent_last[m] = v_last_seq THEN
                            v_verdict := 2;
                            v_base := st.recent_base[m];
                        END IF;
                    END LOOP;
                    IF v_verdict = 0 AND coalesce(cardinality(st.recent_last), 0) > 0
                       AND p_b_seq[k]::bigint <> (st.recent_last[cardinality(st.recent_last)]::bigint + 1) % 2147483648 THEN
                        v_verdict := 3;
                    END IF;
                END IF;
            END IF;
        END IF;

        IF v_verdict = 0 THEN
            v_base := v_hw;
            v_hw := v_hw + p_b_cnt[k];
            IF base_offsets[ci] = -1 THEN
                base_offsets[ci] := v_base;
            END IF;
            IF r_open AND r_pos + r_len = p_b_pos[k] THEN
                r_len := r_len + p_b_len[k];
                r_cnt := r_cnt + p_b_cnt[k];
                r_batches := r_batches + 1;
                r_min := least(r_min, p_b_min_ts[k]);
                r_max := greatest(r_max, p_b_max_ts[k]);
            ELSE
                IF r_open THEN
                    INSERT INTO index_entries (topic_id, partition, base_offset, last_offset,
                                               segment_key, position, length, batch_count, min_ts, max_ts)
                    VALUES (v_tid, v_part, r_base, r_base + r_cnt - 1, p_segment_key, r_pos, r_len, r_batches, r_min, r_max);
                END IF;
                r_open := true;
                r_base := v_base;
                r_pos := p_b_pos[k];
                r_len := p_b_len[k];
                r_cnt := p_b_cnt[k];
                r_batches := 1;
                r_min := p_b_min_ts[k];
                r_max := p_b_max_ts[k];
            END IF;
            IF p_b_pid[k] >= 0 AND p_b_control[k] THEN
                IF NOT v_found OR st.epoch < p_b_epoch[k] THEN
                    INSERT INTO producer_state (producer_id, topic_id, partition, epoch, recent_first, recent_last, recent_base, updated_at)
                    VALUES (p_b_pid[k], v_tid, v_part, p_b_epoch[k], '{}', '{}', '{}', now())
                    ON CONFLICT (producer_id, topic_id, partition) DO UPDATE
                        SET epoch = excluded.epoch, recent_first = excluded.recent_first,
                            recent_last = excluded.recent_last, recent_base = excluded.recent_base,
                            updated_at = excluded.updated_at;
                END IF;
            ELSIF p_b_pid[k] >= 0 THEN
                IF v_found AND st.epoch = p_b_epoch[k] THEN
                    rf := st.recent_first || p_b_seq[k];
                    rl := st.recent_last || v_last_seq;
                    rb := st.recent_base || v_base;
                    IF cardinality(rf) > 5 THEN
                        rf := rf[cardinality(rf) - 4:];
                        rl := rl[cardinality(rl) - 4:];
                        rb := rb[cardinality(rb) - 4:];
                    END IF;
                ELSE
                    rf := ARRAY[p_b_seq[k]];
                    rl := ARRAY[v_last_seq];
                    rb := ARRAY[v_base];
                END IF;
                INSERT INTO producer_state (producer_id, topic_id, partition, epoch, recent_first, recent_last, recent_base, updated_at)
                VALUES (p_b_pid[k], v_tid, v_part, p_b_epoch[k], rf, rl, rb, now())
                ON CONFLICT (producer_id, topic_id, partition) DO UPDATE
                    SET epoch = excluded.epoch, recent_first = excluded.recent_first,
                        recent_last = excluded.recent_last, recent_base = excluded.recent_base,
                        updated_at = excluded.updated_at;
            END IF;
        ELSIF r_open THEN
            INSERT INTO index_entries (topic_id, partition, base_offset, last_offset,
                                       segment_key, position, length, batch_count, min_ts, max_ts)
            VALUES (v_tid, v_part, r_base, r_base + r_cnt - 1, p_segment_key, r_pos, r_len, r_batches, r_min, r_max);
            r_open := false;
        END IF;
        b_verdicts := b_verdicts || v_verdict;
        b_bases := b_bases || v_base;
    END LOOP;

    UPDATE segments
    SET state = 'committed', size = p_size, committed_at = now()
    WHERE key = p_segment_key;

    -- Delivered at COMMIT: other agents fetch the new index rows once per
    -- flush and wake their long polls, instead of polling per fetch.
    PERFORM pg_notify('silt_commits', p_agent || E'\t' || p_segment_key);
END;
$$;
