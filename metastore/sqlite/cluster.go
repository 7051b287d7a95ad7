package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/siltstream/silt/metastore"
)

func bumpEpoch(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "UPDATE cluster_membership SET epoch = epoch + 1 WHERE id = 1")
	return err
}

func expireAgents(ctx context.Context, tx *sql.Tx) (int64, error) {
	res, err := tx.ExecContext(ctx, "DELETE FROM agents WHERE expires_at <= ?", now())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// RegisterAgent implements metastore.Store.
func (s *Store) RegisterAgent(ctx context.Context, a metastore.Agent, ttl time.Duration) error {
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		expired, err := expireAgents(ctx, tx)
		if err != nil {
			return err
		}
		var existing int
		switch err := tx.QueryRowContext(ctx, "SELECT 1 FROM agents WHERE id = ?", a.ID).Scan(&existing); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		}
		var nodeID sql.NullInt32
		if a.NodeID != nil {
			nodeID = sql.NullInt32{Int32: *a.NodeID, Valid: true}
			// Writes are serialized (one write connection): no other agent
			// can take it between this check and the insert.
			var h metastore.Agent
			var exp int64
			err := tx.QueryRowContext(ctx, "SELECT id, addr, expires_at FROM agents WHERE node_id = ? AND id <> ?",
				*a.NodeID, a.ID).Scan(&h.ID, &h.Addr, &exp)
			switch {
			case err == nil:
				h.Expires = time.Unix(0, exp)
				return &metastore.NodeIDTakenError{NodeID: *a.NodeID, Holder: h}
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO agents (id, addr, zone, expires_at, listeners, node_id) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, zone = excluded.zone, expires_at = excluded.expires_at,
				listeners = excluded.listeners, node_id = excluded.node_id`,
			a.ID, a.Addr, a.Zone, now()+int64(ttl), metastore.FormatAgentListeners(a.Listeners), nodeID); err != nil {
			return err
		}
		if expired > 0 || existing == 0 {
			return bumpEpoch(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("register agent %s: %w", a.ID, err)
	}
	return nil
}

// DeregisterAgent implements metastore.Store.
func (s *Store) DeregisterAgent(ctx context.Context, id string) error {
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM agents WHERE id = ?", id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return bumpEpoch(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deregister agent %s: %w", id, err)
	}
	return nil
}

// Membership implements metastore.Store.
func (s *Store) Membership(ctx context.Context) (metastore.Membership, error) {
	m := metastore.Membership{Agents: []metastore.Agent{}}
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		expired, err := expireAgents(ctx, tx)
		if err != nil {
			return err
		}
		if expired > 0 {
			if err := bumpEpoch(ctx, tx); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, "SELECT id, addr, zone, expires_at, listeners, node_id FROM agents ORDER BY id")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				a    metastore.Agent
				exp  int64
				ls   string
				node sql.NullInt32
			)
			if err := rows.Scan(&a.ID, &a.Addr, &a.Zone, &exp, &ls, &node); err != nil {
				return err
			}
			a.NodeID = nodeIDOf(node)
			a.Listeners = metastore.ParseAgentListeners(ls)
			a.Expires = time.Unix(0, exp)
			m.Agents = append(m.Agents, a)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, "SELECT epoch FROM cluster_membership WHERE id = 1").Scan(&m.Epoch)
	})
	if err != nil {
		return metastore.Membership{}, fmt.Errorf("read membership: %w", err)
	}
	return m, nil
}

// IndexBySegment implements metastore.Store.
func (s *Store) IndexBySegment(ctx context.Context, segmentKey string) ([]metastore.IndexEntry, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+indexColumns+` FROM index_entries WHERE segment_key = ?
		ORDER BY topic_id, partition`, segmentKey)
	if err != nil {
		return nil, fmt.Errorf("index of segment %s: %w", segmentKey, err)
	}
	defer rows.Close()
	var out []metastore.IndexEntry
	for rows.Next() {
		e, err := scanIndexEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("index of segment %s: %w", segmentKey, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// AcquireLease implements metastore.Store.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	t := now()
	rows, err := s.write.QueryContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4
		RETURNING holder`, name, holder, t+int64(ttl), t)
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	defer rows.Close()
	got := rows.Next()
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return got, nil
}

// ReleaseLease implements metastore.Store.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.write.ExecContext(ctx, "DELETE FROM leases WHERE name = ? AND holder = ?", name, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// Agents implements metastore.Store.
func (s *Store) Agents(ctx context.Context) ([]metastore.Agent, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT id, addr, zone, expires_at, listeners, node_id FROM agents WHERE expires_at > ? ORDER BY id", now())
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	defer rows.Close()
	out := []metastore.Agent{}
	for rows.Next() {
		var (
			a    metastore.Agent
			exp  int64
			ls   string
			node sql.NullInt32
		)
		if err := rows.Scan(&a.ID, &a.Addr, &a.Zone, &exp, &ls, &node); err != nil {
			return nil, fmt.Errorf("list agents: %w", err)
		}
		a.NodeID = nodeIDOf(node)
		a.Listeners = metastore.ParseAgentListeners(ls)
		a.Expires = time.Unix(0, exp)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return out, nil
}

// nodeIDOf is an agent's recorded node id; NULL for one registered before
// node ids were recorded.
func nodeIDOf(n sql.NullInt32) *int32 {
	if !n.Valid {
		return nil
	}
	return &n.Int32
}
