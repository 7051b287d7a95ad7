-- The log of __consumer_offsets (metastore.OffsetLogStore). Every write of
-- a committed offset takes the next sequence number of its group's
-- partition of __consumer_offsets (part, computed by the agent with Kafka's
-- hash of the group id), in the same transaction; the sequence is the
-- record's offset. Taking it by updating the partition's counter row holds
-- that row until commit, so sequences become visible in order: a reader
-- that saw next_seq = n sees every row below n that still exists.
CREATE TABLE consumer_offsets_log (
    part     integer PRIMARY KEY,
    next_seq bigint NOT NULL
);
INSERT INTO consumer_offsets_log (part, next_seq) SELECT g, 0 FROM generate_series(0, 49) AS g;

-- part -1: a row written before this migration, numbered by the Go step
-- run in this migration's transaction (numberOffsetLog: the hash of the
-- group id is computed in Go), or since by an agent not upgraded yet.
ALTER TABLE consumer_offsets
    ADD COLUMN part      integer NOT NULL DEFAULT -1,
    ADD COLUMN seq       bigint  NOT NULL DEFAULT -1,
    ADD COLUMN commit_ms bigint  NOT NULL DEFAULT 0;
CREATE INDEX consumer_offsets_by_seq ON consumer_offsets (part, seq);

-- Groups take a sequence number at every save too: their metadata is a
-- record of the same partition (SaveGroup numbers the row it stored).
ALTER TABLE consumer_groups
    ADD COLUMN part      integer NOT NULL DEFAULT -1,
    ADD COLUMN seq       bigint  NOT NULL DEFAULT -1,
    ADD COLUMN commit_ms bigint  NOT NULL DEFAULT 0;
CREATE INDEX consumer_groups_by_seq ON consumer_groups (part, seq);

-- commit_offsets writes a group's offsets, one sequence number per row
-- written, replacing earlier ones for the same partitions. DISTINCT ON
-- keeps the last entry when a partition appears twice.
CREATE FUNCTION commit_offsets(
    p_group      text,
    p_part       integer,
    p_topics     text[],
    p_partitions integer[],
    p_offsets    bigint[],
    p_epochs     integer[],
    p_metadata   text[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_base bigint;
    v_n    integer := cardinality(p_topics);
BEGIN
    IF v_n = 0 THEN
        RETURN;
    END IF;
    UPDATE consumer_offsets_log SET next_seq = next_seq + v_n WHERE part = p_part
    RETURNING next_seq - v_n INTO v_base;
    IF v_base IS NULL THEN
        RAISE EXCEPTION 'no partition % of __consumer_offsets', p_part;
    END IF;
    INSERT INTO consumer_offsets (group_id, topic, partition, "offset", leader_epoch, metadata, part, seq, commit_ms)
    SELECT p_group, t, p, o, e, m, p_part, v_base + row_number() OVER (ORDER BY i) - 1,
        (extract(epoch FROM clock_timestamp()) * 1000)::bigint
    FROM (
        SELECT DISTINCT ON (t, p) t, p, o, e, m, i
        FROM unnest(p_topics, p_partitions, p_offsets, p_epochs, p_metadata) WITH ORDINALITY AS u(t, p, o, e, m, i)
        ORDER BY t, p, i DESC
    ) AS d
    ON CONFLICT (group_id, topic, partition) DO UPDATE
    SET "offset" = excluded."offset", leader_epoch = excluded.leader_epoch, metadata = excluded.metadata,
        part = excluded.part, seq = excluded.seq, commit_ms = excluded.commit_ms;
    -- Delivered at commit: long polls on this partition, on every agent,
    -- read again.
    PERFORM pg_notify('silt_offsets', p_part::text);
END;
$$;

-- commit_group_offsets is 0003's check, then commit_offsets; it takes the
-- partition of __consumer_offsets as well. 0003's function (one argument
-- fewer) stays for agents not upgraded yet during a rolling upgrade: their
-- commits still count, but are not numbered (an older row keeps its old
-- place in the log, a new one has part -1 and is not in it) until an
-- upgraded agent writes the row again.
CREATE FUNCTION commit_group_offsets(
    p_group      text,
    p_generation integer,
    p_member     text,
    p_topics     text[],
    p_partitions integer[],
    p_offsets    bigint[],
    p_epochs     integer[],
    p_metadata   text[],
    p_part       integer
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_gen     integer;
    v_members text[];
BEGIN
    SELECT generation, member_ids INTO v_gen, v_members
    FROM consumer_groups WHERE group_id = p_group FOR SHARE;
    IF p_generation >= 0 THEN
        IF v_gen IS DISTINCT FROM p_generation THEN
            RETURN 'stale';
        END IF;
        IF NOT (p_member = ANY (v_members)) THEN
            RETURN 'unknown_member';
        END IF;
    ELSIF cardinality(v_members) > 0 THEN
        RETURN 'not_empty';
    END IF;
    PERFORM commit_offsets(p_group, p_part, p_topics, p_partitions, p_offsets, p_epochs, p_metadata);
    RETURN 'ok';
END;
$$;
