package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/internal/claimrow"
)

// Group implements metastore.GroupStore.
func (s *Store) Group(ctx context.Context, id string) (metastore.Group, bool, error) {
	g := metastore.Group{ID: id}
	var members []byte
	var cstate string
	err := s.pool.QueryRow(ctx, `SELECT generation, protocol_type, protocol, leader, state, members, group_type, consumer_state
		FROM consumer_groups WHERE group_id = $1`, id).
		Scan(&g.Generation, &g.ProtocolType, &g.Protocol, &g.Leader, &g.State, &members, &g.Type, &cstate)
	if errors.Is(err, pgx.ErrNoRows) {
		return metastore.Group{}, false, nil
	}
	if err != nil {
		return metastore.Group{}, false, fmt.Errorf("load group %s: %w", id, err)
	}
	if err := json.Unmarshal(members, &g.Members); err != nil {
		return metastore.Group{}, false, fmt.Errorf("load group %s: decode members: %w", id, err)
	}
	if cstate != "" {
		g.ConsumerState = []byte(cstate)
	}
	return g, true, nil
}

// SaveGroup implements metastore.GroupStore. It is one statement: an
// update guarded by the stored generation, or an insert when nothing is
// stored yet (prevGeneration 0). A concurrent update from the same
// generation waits on the row lock and then finds the generation moved; a
// concurrent insert meets the primary key and does nothing.
func (s *Store) SaveGroup(ctx context.Context, g metastore.Group, prevGeneration int32) error {
	if g.Generation < prevGeneration {
		return fmt.Errorf("save group %s: generation %d behind %d: %w", g.ID, g.Generation, prevGeneration, metastore.ErrStaleGeneration)
	}
	members := g.Members
	if members == nil {
		members = []metastore.GroupMember{}
	}
	enc, err := json.Marshal(members)
	if err != nil {
		return fmt.Errorf("save group %s: encode members: %w", g.ID, err)
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	var n int
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkGroupEpoch(ctx, tx, g.ID, g.Epoch); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `WITH upd AS (
			UPDATE consumer_groups
			SET generation = $2, protocol_type = $3, protocol = $4, leader = $5, state = $6,
				member_ids = $7, members = $8, group_type = $10, consumer_state = $11
			WHERE group_id = $1 AND generation = $9::integer
			RETURNING 1
		), ins AS (
			INSERT INTO consumer_groups
				(group_id, generation, protocol_type, protocol, leader, state, member_ids, members, group_type, consumer_state)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, $10, $11 WHERE $9::integer = 0
			ON CONFLICT (group_id) DO NOTHING
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM upd) + (SELECT count(*) FROM ins)`,
			g.ID, g.Generation, g.ProtocolType, g.Protocol, g.Leader, g.State, ids, enc, prevGeneration, g.TypeName(), string(g.ConsumerState)).Scan(&n)
		if err != nil || n == 0 {
			return err
		}
		return numberGroup(ctx, tx, g.ID)
	})
	if err != nil {
		return fmt.Errorf("save group %s: %w", g.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("save group %s at generation %d from %d: %w", g.ID, g.Generation, prevGeneration, metastore.ErrStaleGeneration)
	}
	return nil
}

// ClaimGroup implements metastore.GroupStore.
func (s *Store) ClaimGroup(ctx context.Context, id string) (int64, error) {
	return s.claim(ctx, claimrow.Groups, id)
}

// checkGroupEpoch refuses, inside tx, a write from coordinator epoch
// epoch (0: unfenced) once the group has been claimed again.
func checkGroupEpoch(ctx context.Context, tx pgx.Tx, group string, epoch int64) error {
	return checkClaim(ctx, tx, claimrow.Groups, group, epoch)
}

// Groups implements metastore.GroupStore.
func (s *Store) Groups(ctx context.Context) ([]metastore.GroupSummary, error) {
	rows, err := s.pool.Query(ctx, `SELECT group_id, protocol_type, state, group_type FROM consumer_groups
		UNION ALL
		SELECT DISTINCT o.group_id, '', 'Empty', 'classic' FROM consumer_offsets o
		WHERE NOT EXISTS (SELECT 1 FROM consumer_groups g WHERE g.group_id = o.group_id)
		ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.GroupSummary, error) {
		var g metastore.GroupSummary
		err := r.Scan(&g.ID, &g.ProtocolType, &g.State, &g.Type)
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	if gs == nil {
		gs = []metastore.GroupSummary{}
	}
	return gs, nil
}

// DeleteGroup implements metastore.GroupStore.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	var res string
	if err := s.pool.QueryRow(ctx, `SELECT delete_group($1)`, id).Scan(&res); err != nil {
		return fmt.Errorf("delete group %s: %w", id, err)
	}
	switch res {
	case "ok":
		return nil
	case "not_empty":
		return fmt.Errorf("delete group %s: %w", id, metastore.ErrGroupNotEmpty)
	default:
		return fmt.Errorf("delete group %s: %w", id, metastore.ErrGroupNotFound)
	}
}

// CommitGroupOffsets implements metastore.GroupStore: one call of the
// commit_group_offsets function (migrations/0003_groups.sql, replaced by
// 0012_offset_log.sql).
func (s *Store) CommitGroupOffsets(ctx context.Context, group string, epoch int64, generation int32, memberID string, offsets []metastore.CommittedOffset) error {
	n := len(offsets)
	var (
		topics   = make([]string, n)
		parts    = make([]int32, n)
		offs     = make([]int64, n)
		epochs   = make([]int32, n)
		metadata = make([]string, n)
	)
	for i, o := range offsets {
		topics[i], parts[i], offs[i], epochs[i], metadata[i] = o.Topic, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata
	}
	var res string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkGroupEpoch(ctx, tx, group, epoch); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT commit_group_offsets($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			group, generation, memberID, topics, parts, offs, epochs, metadata, metastore.OffsetsPartition(group)).Scan(&res)
	})
	if err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	return commitResult(group, generation, memberID, res)
}

func commitResult(group string, generation int32, memberID, res string) error {
	switch res {
	case "ok":
		return nil
	case "stale":
		return fmt.Errorf("commit offsets of group %s at generation %d: %w", group, generation, metastore.ErrStaleGeneration)
	case "unknown_member":
		return fmt.Errorf("commit offsets of group %s by %s: %w", group, memberID, metastore.ErrUnknownMember)
	case "not_empty":
		return fmt.Errorf("commit offsets of group %s from outside it: %w", group, metastore.ErrGroupNotEmpty)
	default:
		return fmt.Errorf("commit offsets of group %s: unexpected result %q", group, res)
	}
}

// DeleteGroupOffsets implements metastore.GroupStore.
func (s *Store) DeleteGroupOffsets(ctx context.Context, group string, partitions []metastore.GroupPartition) error {
	if len(partitions) == 0 {
		return nil
	}
	topics := make([]string, len(partitions))
	parts := make([]int32, len(partitions))
	for i, p := range partitions {
		topics[i], parts[i] = p.Topic, p.Partition
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM consumer_offsets
		WHERE group_id = $1 AND (topic, partition) IN (SELECT * FROM unnest($2::text[], $3::integer[]))`,
		group, topics, parts)
	if err != nil {
		return fmt.Errorf("delete offsets of group %s: %w", group, err)
	}
	return nil
}
