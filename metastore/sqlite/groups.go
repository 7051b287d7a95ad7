package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/internal/claimrow"
)

// Group implements metastore.GroupStore.
func (s *Store) Group(ctx context.Context, id string) (metastore.Group, bool, error) {
	g, ok, err := loadGroup(ctx, s.read, id)
	if err != nil {
		return metastore.Group{}, false, fmt.Errorf("load group %s: %w", id, err)
	}
	return g, ok, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func loadGroup(ctx context.Context, q querier, id string) (metastore.Group, bool, error) {
	g := metastore.Group{ID: id}
	var members, cstate string
	err := q.QueryRowContext(ctx, `SELECT generation, protocol_type, protocol, leader, state, members, group_type, consumer_state
		FROM consumer_groups WHERE group_id = ?`, id).
		Scan(&g.Generation, &g.ProtocolType, &g.Protocol, &g.Leader, &g.State, &members, &g.Type, &cstate)
	if errors.Is(err, sql.ErrNoRows) {
		return metastore.Group{}, false, nil
	}
	if err != nil {
		return metastore.Group{}, false, err
	}
	if err := json.Unmarshal([]byte(members), &g.Members); err != nil {
		return metastore.Group{}, false, fmt.Errorf("decode members: %w", err)
	}
	if cstate != "" {
		g.ConsumerState = []byte(cstate)
	}
	return g, true, nil
}

// SaveGroup implements metastore.GroupStore.
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
	err = inTx(ctx, s.write, func(tx *sql.Tx) error {
		if err := checkGroupEpoch(ctx, tx, g.ID, g.Epoch); err != nil {
			return err
		}
		var stored int32
		switch err := tx.QueryRowContext(ctx, `SELECT generation FROM consumer_groups WHERE group_id = ?`, g.ID).Scan(&stored); {
		case errors.Is(err, sql.ErrNoRows):
			stored = 0
		case err != nil:
			return err
		}
		if stored != prevGeneration {
			return fmt.Errorf("stored generation is %d, not %d: %w", stored, prevGeneration, metastore.ErrStaleGeneration)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO consumer_groups
				(group_id, generation, protocol_type, protocol, leader, state, members, group_type, consumer_state)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (group_id) DO UPDATE
			SET generation = excluded.generation, protocol_type = excluded.protocol_type,
				protocol = excluded.protocol, leader = excluded.leader, state = excluded.state,
				members = excluded.members, group_type = excluded.group_type,
				consumer_state = excluded.consumer_state`,
			g.ID, g.Generation, g.ProtocolType, g.Protocol, g.Leader, g.State, string(enc), g.TypeName(), string(g.ConsumerState))
		if err != nil {
			return err
		}
		return numberGroup(ctx, tx, g.ID)
	})
	if err != nil {
		return fmt.Errorf("save group %s at generation %d: %w", g.ID, g.Generation, err)
	}
	return nil
}

// Groups implements metastore.GroupStore.
func (s *Store) Groups(ctx context.Context) ([]metastore.GroupSummary, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT group_id, protocol_type, state, group_type FROM consumer_groups
		UNION ALL
		SELECT DISTINCT o.group_id, '', 'Empty', 'classic' FROM consumer_offsets o
		WHERE NOT EXISTS (SELECT 1 FROM consumer_groups g WHERE g.group_id = o.group_id)
		ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	defer rows.Close()
	out := []metastore.GroupSummary{}
	for rows.Next() {
		var g metastore.GroupSummary
		if err := rows.Scan(&g.ID, &g.ProtocolType, &g.State, &g.Type); err != nil {
			return nil, fmt.Errorf("list groups: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return out, nil
}

// DeleteGroup implements metastore.GroupStore.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		g, ok, err := loadGroup(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(g.Members) > 0 {
			return metastore.ErrGroupNotEmpty
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM consumer_offsets WHERE group_id = ?`, id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if !ok && n == 0 {
			return metastore.ErrGroupNotFound
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM consumer_groups WHERE group_id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete group %s: %w", id, err)
	}
	return nil
}

// ClaimGroup implements metastore.GroupStore.
func (s *Store) ClaimGroup(ctx context.Context, id string) (int64, error) {
	return s.claim(ctx, claimrow.Groups, id)
}

// checkGroupEpoch refuses, inside tx, a write from coordinator epoch
// epoch (0: unfenced) once the group has been claimed again.
func checkGroupEpoch(ctx context.Context, tx *sql.Tx, group string, epoch int64) error {
	return checkClaim(ctx, tx, claimrow.Groups, group, epoch)
}

// CommitGroupOffsets implements metastore.GroupStore.
func (s *Store) CommitGroupOffsets(ctx context.Context, group string, epoch int64, generation int32, memberID string, offsets []metastore.CommittedOffset) error {
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		if err := checkGroupEpoch(ctx, tx, group, epoch); err != nil {
			return err
		}
		g, ok, err := loadGroup(ctx, tx, group)
		if err != nil {
			return err
		}
		if generation >= 0 {
			if !ok || g.Generation != generation {
				return fmt.Errorf("generation %d: %w", generation, metastore.ErrStaleGeneration)
			}
			found := false
			for _, m := range g.Members {
				found = found || m.ID == memberID
			}
			if !found {
				return fmt.Errorf("member %s: %w", memberID, metastore.ErrUnknownMember)
			}
		} else if len(g.Members) > 0 {
			return fmt.Errorf("commit from outside the group: %w", metastore.ErrGroupNotEmpty)
		}
		return writeOffsets(ctx, tx, group, offsets)
	})
	if err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	return nil
}

// DeleteGroupOffsets implements metastore.GroupStore.
func (s *Store) DeleteGroupOffsets(ctx context.Context, group string, partitions []metastore.GroupPartition) error {
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		for _, p := range partitions {
			if _, err := tx.ExecContext(ctx, `DELETE FROM consumer_offsets WHERE group_id = ? AND topic = ? AND partition = ?`,
				group, p.Topic, p.Partition); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete offsets of group %s: %w", group, err)
	}
	return nil
}
