-- Cheaper index rows, so a flush's commit stays fast (issue "The life of
-- data in the bucket", item 5). Per chunk, commit_flush used to write an
-- index row into three btrees and lock its partition row before updating
-- it; now it writes a smaller row into one btree and updates the
-- partition row once:
--
--   * Segments are numbered (segments.id, a bigint identity) and index
--     rows reference that number instead of the object key: an 8-byte
--     column and key instead of a text one. Readers join segments for the
--     key; a segment record stays while any index row references it (see
--     GCStore), so the join always finds it.
--   * The timestamp index is gone. Each row carries run_max_ts, the
--     largest max_ts of its partition's rows up to and including it (the
--     partition row keeps the running value, updated by the same UPDATE
--     that advances the high watermark). It never decreases in offset
--     order, like Kafka's time index, so index_ts_start finds the first
--     row whose run_max_ts reaches a timestamp by binary search over the
--     primary key; every row before that one has max_ts below it.
--     Retention deletes rows without lowering later rows' run_max_ts,
--     which then may exceed every max_ts left: lookups scan forward from
--     index_ts_start for the first row whose own max_ts qualifies, so
--     answers stay exact.
--   * Index rows have no btree by segment any more: each segment lists
--     the offset ranges its commit assigned (see below).
--   * gc_candidates hold segment ids.
--
-- Numbered 0017: 0015 and 0016 are taken by other branches.

ALTER TABLE segments ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE segments ADD CONSTRAINT segments_id_key UNIQUE (id);

-- Every committed index row's segment has a record (a segment is doomed
-- only once unreferenced); should one be missing, recreate it as
-- committed, so the row stays readable and garbage collection still
-- waits for it.
INSERT INTO segments (key, agent, state, committed_at)
SELECT DISTINCT e.segment_key, '', 'committed', now()
FROM index_entries e
WHERE NOT EXISTS (SELECT 1 FROM segments s WHERE s.key = e.segment_key);

ALTER TABLE partitions ADD COLUMN max_ts bigint; -- running max of its rows' max_ts; NULL before the first

-- Columns ordered so that none needs alignment padding.
CREATE TABLE index_entries_0017 (
    topic_id    uuid NOT NULL,
    partition   integer NOT NULL,
    batch_count integer NOT NULL,
    base_offset bigint NOT NULL,
    last_offset bigint NOT NULL,
    segment_id  bigint NOT NULL,
    position    bigint NOT NULL,
    length      bigint NOT NULL,
    min_ts      bigint NOT NULL,
    max_ts      bigint NOT NULL,
    run_max_ts  bigint NOT NULL
);
INSERT INTO index_entries_0017
SELECT e.topic_id, e.partition, e.batch_count, e.base_offset, e.last_offset, s.id,
       e.position, e.length, e.min_ts, e.max_ts,
       max(e.max_ts) OVER (PARTITION BY e.topic_id, e.partition ORDER BY e.base_offset)
FROM index_entries e JOIN segments s ON s.key = e.segment_key;

UPDATE partitions p SET max_ts = m.max_ts
FROM (SELECT topic_id, partition, max(max_ts) AS max_ts FROM index_entries
      GROUP BY topic_id, partition) m
WHERE p.topic_id = m.topic_id AND p.partition = m.partition;

DROP TABLE index_entries;
ALTER TABLE index_entries_0017 RENAME TO index_entries;
ALTER TABLE index_entries ADD CONSTRAINT index_entries_pkey PRIMARY KEY (topic_id, partition, base_offset);

-- Each committed segment lists where its rows went: per chunk (in the
-- order of the commit's chunks) the topic, the partition and the offsets
-- [chunk_starts, chunk_ends) its commit assigned there. Rows are only ever
-- added by committing a segment, so every row that references it lies in
-- those ranges: retried commits and other agents' commit notifications
-- find them by primary key (IndexBySegment), and garbage collection checks
-- that none is left, without a third btree on index_entries written per
-- chunk. Arrays of one row, written once per commit, cost far less.
ALTER TABLE segments
    ADD COLUMN chunk_topic_ids  uuid[],
    ADD COLUMN chunk_partitions integer[],
    ADD COLUMN chunk_starts     bigint[],
    ADD COLUMN chunk_ends       bigint[];
UPDATE segments s
SET chunk_topic_ids = c.topic_ids, chunk_partitions = c.partitions,
    chunk_starts = c.starts, chunk_ends = c.ends
FROM (SELECT segment_id, array_agg(topic_id) AS topic_ids, array_agg(partition) AS partitions,
             array_agg(starts) AS starts, array_agg(ends) AS ends
      FROM (SELECT segment_id, topic_id, partition, min(base_offset) AS starts, max(last_offset) + 1 AS ends
            FROM index_entries GROUP BY segment_id, topic_id, partition) r
      GROUP BY segment_id) c
WHERE s.id = c.segment_id;

ALTER TABLE gc_candidates ADD COLUMN segment_id bigint;
UPDATE gc_candidates c SET segment_id = s.id FROM segments s WHERE s.key = c.segment_key;
-- A candidate without a segment record was doomed already.
DELETE FROM gc_candidates WHERE segment_id IS NULL;
ALTER TABLE gc_candidates ALTER COLUMN segment_id SET NOT NULL;
ALTER TABLE gc_candidates DROP COLUMN segment_key;

-- index_ts_start returns the base offset of the first row of a partition
-- whose run_max_ts is at least p_ts, or NULL if there is none: a binary
-- search over the primary key, each step one or two index probes. lo and
-- hi are base offsets of rows; the answer lies in [lo, hi] and hi's row
-- qualifies. Offsets between rows need not be contiguous. STABLE, so all
-- its queries read the caller's snapshot.
CREATE FUNCTION index_ts_start(p_topic_id uuid, p_partition integer, p_ts bigint)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    lo  bigint;
    hi  bigint;
    mid bigint;
    m   record;
BEGIN
    SELECT base_offset, run_max_ts INTO m FROM index_entries
    WHERE topic_id = p_topic_id AND partition = p_partition
    ORDER BY base_offset DESC LIMIT 1;
    IF NOT FOUND OR m.run_max_ts < p_ts THEN
        RETURN NULL;
    END IF;
    hi := m.base_offset;
    SELECT base_offset INTO lo FROM index_entries
    WHERE topic_id = p_topic_id AND partition = p_partition
    ORDER BY base_offset LIMIT 1;
    WHILE lo < hi LOOP
        mid := lo + (hi - lo) / 2;
        -- The row holding mid, or the last before it: lo's row at least.
        SELECT base_offset, run_max_ts INTO m FROM index_entries
        WHERE topic_id = p_topic_id AND partition = p_partition AND base_offset <= mid
        ORDER BY base_offset DESC LIMIT 1;
        IF m.run_max_ts >= p_ts THEN
            hi := m.base_offset;
        ELSE
            -- hi's row qualifies and m's does not, so a row follows m.
            SELECT base_offset INTO lo FROM index_entries
            WHERE topic_id = p_topic_id AND partition = p_partition AND base_offset > m.base_offset
            ORDER BY base_offset LIMIT 1;
        END IF;
    END LOOP;
    RETURN lo;
END;
$$;

-- commit_flush as defined in 0005, writing the rows above: segment_id for
-- segment_key, run_max_ts from the partition row's running max_ts, which
-- it advances with the high watermark.
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
    v_seg      bigint;
    v_starts   bigint[];
    v_ends     bigint[];
    v_run      bigint;
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
    SELECT id, state INTO v_seg, v_state FROM segments WHERE key = p_segment_key FOR UPDATE;
    IF v_state IS NULL THEN
        RAISE EXCEPTION 'commit_flush: upload % was never recorded, or was forgotten as an orphan', p_segment_key
            USING ERRCODE = 'P0002';
    END IF;
    IF v_state = 'committed' THEN
        already := true;
        RETURN;
    END IF;

    base_offsets := array_fill(-1::bigint, ARRAY[v_n]);
    v_starts := base_offsets;
    v_ends := base_offsets;

    -- One UPDATE locks and advances every touched partition, in
    -- (topic_id, partition) order, so concurrent flushes never deadlock
    -- (the lock pass it replaces wrote every row twice). The order is the
    -- plan's: c is sorted, and with the function's planner settings (no
    -- sequential or bitmap scan, no hash or merge join: see the ALTER
    -- FUNCTION below) what remains is a nested loop, driven either by c
    -- (probing the primary key per chunk, the plan chosen) or by a scan of
    -- the primary key: both emit the joined rows in key order. (A merge
    -- join would too, but reads every partition of every topic.)
    -- Chunks with listed batches are only locked here (their offsets are
    -- assigned below, batch by batch); the others get one index row each.
    -- A partition missing (or named twice) changes fewer rows than there
    -- are chunks: the exception undoes this block (a subtransaction) and
    -- the missing partitions are listed, as 0005 answers.
    BEGIN
    WITH c AS MATERIALIZED (
        SELECT c.*, c.i::integer = ANY (coalesce(p_b_chunk, '{}')) AS by_batch
        FROM unnest(p_topic_ids, p_partitions, p_positions, p_lengths, p_counts,
                    p_batches, p_min_ts, p_max_ts)
             WITH ORDINALITY AS c(topic_id, partition, position, length, cnt,
                                  batches, min_ts, max_ts, i)
        ORDER BY c.topic_id, c.partition
    ), advanced AS (
        UPDATE partitions p
        SET high_watermark = p.high_watermark + CASE WHEN c.by_batch THEN 0 ELSE c.cnt END,
            max_ts = CASE WHEN c.by_batch THEN p.max_ts ELSE greatest(p.max_ts, c.max_ts) END
        FROM c
        WHERE p.topic_id = c.topic_id AND p.partition = c.partition
        RETURNING c.*, p.high_watermark - c.cnt AS base_offset, p.max_ts AS run_max_ts
    ), indexed AS (
        -- From advanced alone: a join back to c would be a nested loop.
        INSERT INTO index_entries (topic_id, partition, batch_count, base_offset, last_offset,
                                   segment_id, position, length, min_ts, max_ts, run_max_ts)
        SELECT a.topic_id, a.partition, a.batches, a.base_offset, a.base_offset + a.cnt - 1,
               v_seg, a.position, a.length, a.min_ts, a.max_ts, a.run_max_ts
        FROM advanced a
        WHERE NOT a.by_batch
    )
    SELECT count(*), array_agg(a.i) FILTER (WHERE NOT a.by_batch),
           array_agg(a.base_offset) FILTER (WHERE NOT a.by_batch)
    INTO v_locked, v_is, v_bases FROM advanced a;
    IF v_locked <> v_n THEN
        RAISE EXCEPTION USING ERRCODE = 'SLT01';
    END IF;
    EXCEPTION WHEN SQLSTATE 'SLT01' THEN
        SELECT array_agg(c.i ORDER BY c.i) INTO missing
        FROM unnest(p_topic_ids, p_partitions) WITH ORDINALITY AS c(topic_id, partition, i)
        WHERE NOT EXISTS (
            SELECT 1 FROM partitions p
            WHERE p.topic_id = c.topic_id AND p.partition = c.partition);
        IF missing IS NULL THEN
            RAISE EXCEPTION 'commit_flush: % chunks but fewer distinct existing partitions (duplicate partition in flush?)', v_n
                USING ERRCODE = '22023';
        END IF;
        RETURN;
    END;
    FOR k IN 1..coalesce(cardinality(v_is), 0) LOOP
        base_offsets[v_is[k]] := v_bases[k];
        v_starts[v_is[k]] := v_bases[k];
        v_ends[v_is[k]] := v_bases[k] + p_counts[v_is[k]];
    END LOOP;

    -- Chunks with listed batches: batch by batch.
    FOR k IN 1..v_nb + 1 LOOP
        IF k > v_nb OR p_b_chunk[k] <> ci THEN
            IF ci <> 0 THEN
                IF r_open THEN
                    v_run := greatest(v_run, r_max);
                    INSERT INTO index_entries (topic_id, partition, batch_count, base_offset, last_offset,
                                               segment_id, position, length, min_ts, max_ts, run_max_ts)
                    VALUES (v_tid, v_part, r_batches, r_base, r_base + r_cnt - 1, v_seg, r_pos, r_len, r_min, r_max, v_run);
                    r_open := false;
                END IF;
                UPDATE partitions SET high_watermark = v_hw, max_ts = v_run WHERE topic_id = v_tid AND partition = v_part;
                v_ends[ci] := v_hw;
            END IF;
            EXIT WHEN k > v_nb;
            ci := p_b_chunk[k];
            v_tid := p_topic_ids[ci];
            v_part := p_partitions[ci];
            SELECT high_watermark, max_ts INTO v_hw, v_run FROM partitions WHERE topic_id = v_tid AND partition = v_part;
            v_starts[ci] := v_hw;
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
                    v_run := greatest(v_run, r_max);
                    INSERT INTO index_entries (topic_id, partition, batch_count, base_offset, last_offset,
                                               segment_id, position, length, min_ts, max_ts, run_max_ts)
                    VALUES (v_tid, v_part, r_batches, r_base, r_base + r_cnt - 1, v_seg, r_pos, r_len, r_min, r_max, v_run);
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
            v_run := greatest(v_run, r_max);
            INSERT INTO index_entries (topic_id, partition, batch_count, base_offset, last_offset,
                                       segment_id, position, length, min_ts, max_ts, run_max_ts)
            VALUES (v_tid, v_part, r_batches, r_base, r_base + r_cnt - 1, v_seg, r_pos, r_len, r_min, r_max, v_run);
            r_open := false;
        END IF;
        b_verdicts := b_verdicts || v_verdict;
        b_bases := b_bases || v_base;
    END LOOP;

    UPDATE segments
    SET state = 'committed', size = p_size, committed_at = now(),
        chunk_topic_ids = p_topic_ids, chunk_partitions = p_partitions,
        chunk_starts = v_starts, chunk_ends = v_ends
    WHERE id = v_seg;

    -- Delivered at COMMIT: other agents fetch the new index rows once per
    -- flush and wake their long polls, instead of polling per fetch.
    PERFORM pg_notify('silt_commits', p_agent || E'\t' || p_segment_key);
END;
$$;

-- commit_flush's UPDATE takes its row locks in key order only with these
-- planner settings (see the comment there). Its other statements are index
-- lookups and inserts, which they do not change.
ALTER FUNCTION commit_flush(text, text, bigint, uuid[], integer[], bigint[], bigint[], bigint[], integer[],
                            bigint[], bigint[], integer[], bigint[], bigint[], bigint[], bigint[], bigint[],
                            bigint[], integer[], integer[], boolean[], boolean[])
    SET enable_seqscan = off
    SET enable_bitmapscan = off
    SET enable_hashjoin = off
    SET enable_mergejoin = off;
