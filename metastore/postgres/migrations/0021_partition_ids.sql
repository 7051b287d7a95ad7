-- Partitions are numbered, and index rows and segments' chunk lists name a
-- partition by that number (issue "The life of data in the bucket", item
-- 5: a flush touching 1,000 partitions commits in under 7 ms). An index
-- row's key was (topic uuid, partition, base offset), 28 bytes; it is now
-- (partition id, base offset), 12, and the row 16 bytes narrower, which is
-- less to write, compare and log per chunk of every flush; a segment lists
-- its chunks' partitions as one integer array instead of a uuid array and
-- an integer array.
--
-- Ids come from an identity and are never reused: a topic deleted and
-- re-created gets new ones, as it gets a new uuid, so a segment's chunk
-- list can never name a partition that is not the one it was written to.
-- integer, not bigint: the key is 16 bytes with either (alignment), and
-- the row is 8 bytes smaller; two billion partitions ever created is not a
-- limit anyone meets.

ALTER TABLE partitions ADD COLUMN id integer GENERATED ALWAYS AS IDENTITY;
ALTER TABLE partitions ADD CONSTRAINT partitions_id_key UNIQUE (id);

-- Rows of partitions that no longer exist cannot be (DeleteTopic deletes
-- them with the partitions); should any be left, their segments become
-- garbage candidates and the rows go.
INSERT INTO gc_candidates (segment_id)
SELECT DISTINCT e.segment_id FROM index_entries e
WHERE NOT EXISTS (SELECT 1 FROM partitions p WHERE p.topic_id = e.topic_id AND p.partition = e.partition);

-- Columns ordered so that none needs alignment padding.
CREATE TABLE index_entries_0021 (
    partition_id integer NOT NULL,
    batch_count  integer NOT NULL,
    base_offset  bigint NOT NULL,
    last_offset  bigint NOT NULL,
    segment_id   bigint NOT NULL,
    position     bigint NOT NULL,
    length       bigint NOT NULL,
    min_ts       bigint NOT NULL,
    max_ts       bigint NOT NULL,
    run_max_ts   bigint NOT NULL
);
INSERT INTO index_entries_0021
SELECT p.id, e.batch_count, e.base_offset, e.last_offset, e.segment_id, e.position, e.length,
       e.min_ts, e.max_ts, e.run_max_ts
FROM index_entries e JOIN partitions p ON p.topic_id = e.topic_id AND p.partition = e.partition;
DROP TABLE index_entries;
ALTER TABLE index_entries_0021 RENAME TO index_entries;
ALTER TABLE index_entries ADD CONSTRAINT index_entries_pkey PRIMARY KEY (partition_id, base_offset);

-- A chunk of a partition that no longer exists gets id 0, which no
-- partition has (identities start at 1): it has no rows.
ALTER TABLE segments ADD COLUMN chunk_partition_ids integer[];
UPDATE segments s
SET chunk_partition_ids = (
    SELECT array_agg(coalesce(p.id, 0) ORDER BY c.i)
    FROM unnest(s.chunk_topic_ids, s.chunk_partitions) WITH ORDINALITY AS c(topic_id, partition, i)
    LEFT JOIN partitions p ON p.topic_id = c.topic_id AND p.partition = c.partition)
WHERE s.chunk_topic_ids IS NOT NULL;
ALTER TABLE segments DROP COLUMN chunk_topic_ids, DROP COLUMN chunk_partitions;

-- commit_flush updates the row of every partition it writes to. Each
-- update checked the foreign key to topics, in an after-trigger event per
-- row (2% of a 1,000-partition commit), though it never changes the key:
-- partition rows are inserted with their topic (CreateTopic,
-- CreatePartitions) and deleted with it (DeleteTopic deletes both), so
-- the key is dropped. Half of each page is left free, so the updated row
-- version fits on its page and the update stays heap-only (about one in
-- ten was not, and then wrote both indexes of partitions); partitions are
-- few, so the space is nothing.
ALTER TABLE partitions DROP CONSTRAINT partitions_topic_id_fkey;
ALTER TABLE partitions SET (fillfactor = 50);

-- A segment's chunk lists are written once and read whole; compressing
-- them cost more than storing them (a 1,000-partition commit's are 20 kB).
ALTER TABLE segments
    ALTER COLUMN chunk_partition_ids SET STORAGE EXTERNAL,
    ALTER COLUMN chunk_starts SET STORAGE EXTERNAL,
    ALTER COLUMN chunk_ends SET STORAGE EXTERNAL;

-- commit_flush also updates an idempotent producer's row in every
-- partition it wrote to. Its index by age made each of those updates
-- write a new entry into both indexes of producer_state (updated_at
-- changes); without it, and with room on the page, the update is
-- heap-only. The expiry of idle producers (every janitor.interval, 5
-- minutes by default) scans the table instead, once per pass: a row per
-- producer and partition it wrote to, where each commit wrote a row per
-- batch into that index.
DROP INDEX producer_state_by_age;
ALTER TABLE producer_state SET (fillfactor = 50);

-- A producer's state in a partition, as commit_flush keeps it while it
-- checks a flush's batches (the columns of producer_state it sets).
CREATE TYPE producer_window AS (
    producer_id  bigint,
    topic_id     uuid,
    partition    integer,
    epoch        smallint,
    recent_first integer[],
    recent_last  integer[],
    recent_base  bigint[]
);

-- index_ts_start as in 0017, by partition id.
DROP FUNCTION index_ts_start(uuid, integer, bigint);
CREATE FUNCTION index_ts_start(p_partition_id integer, p_ts bigint)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    lo  bigint;
    hi  bigint;
    mid bigint;
    m   record;
BEGIN
    SELECT base_offset, run_max_ts INTO m FROM index_entries
    WHERE partition_id = p_partition_id
    ORDER BY base_offset DESC LIMIT 1;
    IF NOT FOUND OR m.run_max_ts < p_ts THEN
        RETURN NULL;
    END IF;
    hi := m.base_offset;
    SELECT base_offset INTO lo FROM index_entries
    WHERE partition_id = p_partition_id
    ORDER BY base_offset LIMIT 1;
    WHILE lo < hi LOOP
        mid := lo + (hi - lo) / 2;
        -- The row holding mid, or the last before it: lo's row at least.
        SELECT base_offset, run_max_ts INTO m FROM index_entries
        WHERE partition_id = p_partition_id AND base_offset <= mid
        ORDER BY base_offset DESC LIMIT 1;
        IF m.run_max_ts >= p_ts THEN
            hi := m.base_offset;
        ELSE
            -- hi's row qualifies and m's does not, so a row follows m.
            SELECT base_offset INTO lo FROM index_entries
            WHERE partition_id = p_partition_id AND base_offset > m.base_offset
            ORDER BY base_offset LIMIT 1;
        END IF;
    END LOOP;
    RETURN lo;
END;
$$;

-- commit_flush as in 0017, writing rows by partition id. The UPDATE that
-- locks and advances the partitions returns their ids; the offsets and ids
-- per chunk come from one aggregate over it instead of a loop, and the
-- chunks' arguments are read by subscript instead of a ten-array unnest.
-- Chunks with listed batches are checked batch by batch as before, but
-- start from the high watermark that UPDATE returned, and their index rows
-- and partition rows are written after the loop, one statement each,
-- instead of a statement per row.
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
    v_pids     integer[];
    v_pid      integer;
    v_hws      bigint[];
    v_runs     bigint[];
    v_by_batch boolean[];
    -- Index rows and partition rows of chunks with listed batches, written
    -- after the loop, each kind by one statement.
    i_pid      integer[] := '{}';
    i_batches  integer[] := '{}';
    i_base     bigint[] := '{}';
    i_last     bigint[] := '{}';
    i_pos      bigint[] := '{}';
    i_len      bigint[] := '{}';
    i_min      bigint[] := '{}';
    i_max      bigint[] := '{}';
    i_run      bigint[] := '{}';
    u_pid      integer[] := '{}';
    u_hw       bigint[] := '{}';
    u_run      bigint[] := '{}';
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
    st         producer_window;
    -- Producer state per listed batch as stored before this commit (all
    -- fields null where there is none), read by one statement; the states
    -- this commit sets, in this chunk (cs: one per producer, so later
    -- batches of the chunk see them) and in all chunks (ps), written after
    -- the loop by one statement. A partition is in one chunk only, so a
    -- batch's state is its chunk's entry if there is one, else the stored
    -- one.
    v_pre      producer_window[];
    cs         producer_window[] := '{}';
    ps         producer_window[] := '{}';
    j          integer;
    v_at       integer; -- the batch's producer's entry in cs, or 0
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
    v_by_batch := array_fill(false, ARRAY[v_n]);
    FOR k IN 1..v_nb LOOP
        v_by_batch[p_b_chunk[k]] := true;
    END LOOP;
    BEGIN
    WITH c AS MATERIALIZED (
        SELECT p_topic_ids[i] AS topic_id, p_partitions[i] AS partition, i, v_by_batch[i] AS by_batch
        FROM generate_series(1, v_n) AS i
        ORDER BY 1, 2
    ), advanced AS (
        UPDATE partitions p
        SET high_watermark = p.high_watermark + CASE WHEN c.by_batch THEN 0 ELSE p_counts[c.i] END,
            max_ts = CASE WHEN c.by_batch THEN p.max_ts ELSE greatest(p.max_ts, p_max_ts[c.i]) END
        FROM c
        WHERE p.topic_id = c.topic_id AND p.partition = c.partition
        RETURNING p.id AS pid, c.i, c.by_batch, p.high_watermark AS hw,
                  p.high_watermark - p_counts[c.i] AS base_offset, p.max_ts AS run_max_ts
    ), indexed AS (
        -- From advanced alone: a join back to c would be a nested loop.
        INSERT INTO index_entries (partition_id, batch_count, base_offset, last_offset,
                                   segment_id, position, length, min_ts, max_ts, run_max_ts)
        SELECT a.pid, p_batches[a.i], a.base_offset, a.base_offset + p_counts[a.i] - 1,
               v_seg, p_positions[a.i], p_lengths[a.i], p_min_ts[a.i], p_max_ts[a.i], a.run_max_ts
        FROM advanced a
        WHERE NOT a.by_batch
    )
    -- Per chunk, in the order of the arguments (every chunk has a row
    -- here, or the count is short): its partition's id, the offsets
    -- assigned to it (-1 for now for chunks with listed batches), and its
    -- partition's high watermark and running max timestamp after this
    -- UPDATE (the loop below starts from them). The aggregates read the
    -- sorted rows in order (one sort for them all).
    SELECT count(*), coalesce(array_agg(a.pid), '{}'),
           coalesce(array_agg(CASE WHEN a.by_batch THEN -1 ELSE a.base_offset END), '{}'),
           coalesce(array_agg(CASE WHEN a.by_batch THEN -1 ELSE a.base_offset + p_counts[a.i] END), '{}'),
           coalesce(array_agg(a.hw), '{}'), coalesce(array_agg(a.run_max_ts), '{}')
    INTO v_locked, v_pids, base_offsets, v_ends, v_hws, v_runs FROM (SELECT * FROM advanced ORDER BY i) a;
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
    v_starts := base_offsets;

    -- Chunks with listed batches: batch by batch.
    IF v_nb > 0 THEN
        SELECT array_agg(ROW(s.producer_id, s.topic_id, s.partition, s.epoch,
                             s.recent_first, s.recent_last, s.recent_base)::producer_window ORDER BY b.k)
        INTO v_pre
        FROM unnest(p_b_pid, p_b_chunk) WITH ORDINALITY AS b(pid, chunk, k)
        LEFT JOIN producer_state s
            ON b.pid >= 0 AND s.producer_id = b.pid
           AND s.topic_id = p_topic_ids[b.chunk] AND s.partition = p_partitions[b.chunk];
    END IF;
    FOR k IN 1..v_nb + 1 LOOP
        IF k > v_nb OR p_b_chunk[k] <> ci THEN
            IF ci <> 0 THEN
                IF r_open THEN
                    v_run := greatest(v_run, r_max);
                    i_pid := i_pid || v_pid; i_batches := i_batches || r_batches; i_base := i_base || r_base;
                    i_last := i_last || (r_base + r_cnt - 1); i_pos := i_pos || r_pos; i_len := i_len || r_len;
                    i_min := i_min || r_min; i_max := i_max || r_max; i_run := i_run || v_run;
                    r_open := false;
                END IF;
                u_pid := u_pid || v_pid; u_hw := u_hw || v_hw; u_run := u_run || v_run;
                v_ends[ci] := v_hw;
                -- Appended one by one: each append is in place, where a
                -- concatenation would copy ps.
                FOREACH st IN ARRAY cs LOOP
                    ps := ps || st;
                END LOOP;
                cs := '{}';
            END IF;
            EXIT WHEN k > v_nb;
            ci := p_b_chunk[k];
            v_tid := p_topic_ids[ci];
            v_part := p_partitions[ci];
            v_pid := v_pids[ci];
            v_hw := v_hws[ci];
            v_run := v_runs[ci];
            v_starts[ci] := v_hw;
        END IF;

        v_verdict := 0;
        v_base := -1;
        v_found := false;
        v_last_seq := ((p_b_seq[k]::bigint + p_b_cnt[k] - 1) % 2147483648)::integer;
        IF p_b_pid[k] >= 0 THEN
            st := v_pre[k];
            v_at := 0;
            FOR j IN 1..cardinality(cs) LOOP
                IF (cs[j]).producer_id = p_b_pid[k] THEN
                    st := cs[j];
                    v_at := j;
                END IF;
            END LOOP;
            v_found := st.producer_id IS NOT NULL;
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
                    i_pid := i_pid || v_pid; i_batches := i_batches || r_batches; i_base := i_base || r_base;
                    i_last := i_last || (r_base + r_cnt - 1); i_pos := i_pos || r_pos; i_len := i_len || r_len;
                    i_min := i_min || r_min; i_max := i_max || r_max; i_run := i_run || v_run;
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
                    st := ROW(p_b_pid[k], v_tid, v_part, p_b_epoch[k], '{}', '{}', '{}')::producer_window;
                    IF v_at > 0 THEN
                        cs[v_at] := st;
                    ELSE
                        cs := cs || st;
                    END IF;
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
                st := ROW(p_b_pid[k], v_tid, v_part, p_b_epoch[k], rf, rl, rb)::producer_window;
                IF v_at > 0 THEN
                    cs[v_at] := st;
                ELSE
                    cs := cs || st;
                END IF;
            END IF;
        ELSIF r_open THEN
            v_run := greatest(v_run, r_max);
            i_pid := i_pid || v_pid; i_batches := i_batches || r_batches; i_base := i_base || r_base;
            i_last := i_last || (r_base + r_cnt - 1); i_pos := i_pos || r_pos; i_len := i_len || r_len;
            i_min := i_min || r_min; i_max := i_max || r_max; i_run := i_run || v_run;
            r_open := false;
        END IF;
        b_verdicts := b_verdicts || v_verdict;
        b_bases := b_bases || v_base;
    END LOOP;

    IF cardinality(ps) > 0 THEN
        INSERT INTO producer_state (producer_id, topic_id, partition, epoch, recent_first, recent_last, recent_base, updated_at)
        SELECT w.producer_id, w.topic_id, w.partition, w.epoch, w.recent_first, w.recent_last, w.recent_base, now()
        FROM unnest(ps) AS w
        ON CONFLICT (producer_id, topic_id, partition) DO UPDATE
            SET epoch = excluded.epoch, recent_first = excluded.recent_first,
                recent_last = excluded.recent_last, recent_base = excluded.recent_base,
                updated_at = excluded.updated_at;
    END IF;
    IF cardinality(u_pid) > 0 THEN
        INSERT INTO index_entries (partition_id, batch_count, base_offset, last_offset,
                                   segment_id, position, length, min_ts, max_ts, run_max_ts)
        SELECT r.pid, r.batches, r.base, r.last, v_seg, r.pos, r.len, r.min_ts, r.max_ts, r.run
        FROM unnest(i_pid, i_batches, i_base, i_last, i_pos, i_len, i_min, i_max, i_run)
             AS r(pid, batches, base, last, pos, len, min_ts, max_ts, run);
        -- Rows this transaction locked above: the order does not matter.
        UPDATE partitions p SET high_watermark = u.hw, max_ts = u.run
        FROM unnest(u_pid, u_hw, u_run) AS u(id, hw, run)
        WHERE p.id = u.id;
    END IF;

    UPDATE segments
    SET state = 'committed', size = p_size, committed_at = now(),
        chunk_partition_ids = v_pids, chunk_starts = v_starts, chunk_ends = v_ends
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
