-- Consumer groups (classic protocol). The coordinating agent keeps a group
-- in memory and saves it here at the end of every rebalance and when it
-- becomes empty. Saves are a compare-and-set on generation, and fenced
-- offset commits check the committer's generation and member id against
-- this row in the same transaction as the offset write, so two agents that
-- both believe they coordinate a group cannot both advance it.
CREATE TABLE consumer_groups (
    group_id      text PRIMARY KEY,
    generation    integer NOT NULL,
    protocol_type text NOT NULL,
    protocol      text NOT NULL,
    leader        text NOT NULL,
    state         text NOT NULL,
    member_ids    text[] NOT NULL, -- for the commit check; members has the rest
    members       jsonb NOT NULL
);

-- commit_group_offsets writes offsets like CommitOffsets after checking the
-- committer: a generation >= 0 must be the stored one and list the member;
-- a generation < 0 (a commit from outside the group) needs a group without
-- members. The group row is share-locked, so a save that would move the
-- generation waits for this commit to finish. Returns 'ok', 'stale',
-- 'unknown_member' or 'not_empty'.
CREATE FUNCTION commit_group_offsets(
    p_group      text,
    p_generation integer,
    p_member     text,
    p_topics     text[],
    p_partitions integer[],
    p_offsets    bigint[],
    p_epochs     integer[],
    p_metadata   text[]
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
    -- DISTINCT ON keeps the last entry when a partition appears twice.
    INSERT INTO consumer_offsets (group_id, topic, partition, "offset", leader_epoch, metadata)
    SELECT DISTINCT ON (t, p) p_group, t, p, o, e, m
    FROM unnest(p_topics, p_partitions, p_offsets, p_epochs, p_metadata) WITH ORDINALITY AS u(t, p, o, e, m, i)
    ORDER BY t, p, i DESC
    ON CONFLICT (group_id, topic, partition) DO UPDATE
    SET "offset" = excluded."offset", leader_epoch = excluded.leader_epoch, metadata = excluded.metadata;
    RETURN 'ok';
END;
$$;

-- delete_group removes an empty group and its offsets. Returns 'ok',
-- 'not_empty' or 'not_found'.
CREATE FUNCTION delete_group(p_group text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_members text[];
    v_offsets integer;
BEGIN
    SELECT member_ids INTO v_members FROM consumer_groups WHERE group_id = p_group FOR UPDATE;
    IF cardinality(v_members) > 0 THEN
        RETURN 'not_empty';
    END IF;
    DELETE FROM consumer_offsets WHERE group_id = p_group;
    GET DIAGNOSTICS v_offsets = ROW_COUNT;
    IF v_members IS NULL AND v_offsets = 0 THEN
        RETURN 'not_found';
    END IF;
    DELETE FROM consumer_groups WHERE group_id = p_group;
    RETURN 'ok';
END;
$$;
