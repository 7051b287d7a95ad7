package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/siltstream/silt/metastore"
)

// bumpEpoch moves the membership epoch forward inside tx, and NOTIFYs
// silt_membership with it (on commit), so every agent rereads the
// membership at once rather than at its next heartbeat.
func bumpEpoch(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "UPDATE cluster_membership SET epoch = epoch + 1 WHERE id = 1"); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, "SELECT pg_notify('silt_membership', '')")
	return err
}

// expireAgents deletes lapsed agents inside tx and reports how many.
func expireAgents(ctx context.Context, tx pgx.Tx) (int64, error) {
	tag, err := tx.Exec(ctx, "DELETE FROM agents WHERE expires_at <= clock_timestamp()")
	return tag.RowsAffected(), err
}

// RegisterAgent implements metastore.Store.
func (s *Store) RegisterAgent(ctx context.Context, a metastore.Agent, ttl time.Duration) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		expired, err := expireAgents(ctx, tx)
		if err != nil {
			return err
		}
		if a.NodeID != nil {
			var h metastore.Agent
			err := tx.QueryRow(ctx, "SELECT id, addr, expires_at FROM agents WHERE node_id = $1 AND id <> $2",
				*a.NodeID, a.ID).Scan(&h.ID, &h.Addr, &h.Expires)
			switch {
			case err == nil:
				return &metastore.NodeIDTakenError{NodeID: *a.NodeID, Holder: h}
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
		}
		var inserted bool
		err = tx.QueryRow(ctx, `INSERT INTO agents (id, addr, zone, expires_at, deletions_seen, listeners, node_id)
			VALUES ($1, $2, $3, clock_timestamp() + $4 * interval '1 microsecond',
				(SELECT seq FROM topic_deletion_counter WHERE id = 1), $5, $6)
			ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, zone = excluded.zone, expires_at = excluded.expires_at,
				listeners = excluded.listeners, node_id = excluded.node_id
			RETURNING (xmax = 0)`, a.ID, a.Addr, a.Zone, ttl.Microseconds(), metastore.FormatAgentListeners(a.Listeners), a.NodeID).Scan(&inserted)
		if isUniqueViolation(err, "agents_node_id") {
			// Another agent took it between the check and the insert.
			return &metastore.NodeIDTakenError{NodeID: *a.NodeID}
		}
		if err != nil {
			return err
		}
		if expired > 0 || inserted {
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
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM agents WHERE id = $1", id)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return bumpEpoch(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("deregister agent %s: %w", id, err)
	}
	return nil
}

// Membership implements metastore.Store.
func (s *Store) Membership(ctx context.Context) (metastore.Membership, error) {
	var m metastore.Membership
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		expired, err := expireAgents(ctx, tx)
		if err != nil {
			return err
		}
		if expired > 0 {
			if err := bumpEpoch(ctx, tx); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, "SELECT id, addr, zone, expires_at, listeners, node_id FROM agents ORDER BY id")
		if err != nil {
			return err
		}
		m.Agents, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.Agent, error) {
			var a metastore.Agent
			var ls string
			if err := r.Scan(&a.ID, &a.Addr, &a.Zone, &a.Expires, &ls, &a.NodeID); err != nil {
				return a, err
			}
			a.Listeners = metastore.ParseAgentListeners(ls)
			return a, nil
		})
		if err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT epoch FROM cluster_membership WHERE id = 1").Scan(&m.Epoch)
	})
	if err != nil {
		return metastore.Membership{}, fmt.Errorf("read membership: %w", err)
	}
	if m.Agents == nil {
		m.Agents = []metastore.Agent{}
	}
	return m, nil
}

// IndexBySegment implements metastore.Store. The segment record lists the
// offsets its commit assigned per partition (migrations 0017 and 0021):
// the rows are found by primary key there.
func (s *Store) IndexBySegment(ctx context.Context, segmentKey string) ([]metastore.IndexEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT p.topic_id, p.partition, `+indexColumns+` FROM segments s
		CROSS JOIN LATERAL unnest(s.chunk_partition_ids, s.chunk_starts, s.chunk_ends) AS c(partition_id, starts, ends)
		JOIN index_entries e ON e.partition_id = c.partition_id
			AND e.base_offset >= c.starts AND e.base_offset < c.ends AND e.segment_id = s.id
		JOIN partitions p ON p.id = e.partition_id
		WHERE s.key = $1
		ORDER BY p.topic_id, p.partition, e.base_offset`, segmentKey)
	if err != nil {
		return nil, fmt.Errorf("index of segment %s: %w", segmentKey, err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.IndexEntry, error) {
		var (
			e  metastore.IndexEntry
			id pgtype.UUID
		)
		err := r.Scan(&id, &e.Partition, &e.BaseOffset, &e.LastOffset, &e.SegmentKey, &e.Position, &e.Length,
			&e.BatchCount, &e.MinTimestamp, &e.MaxTimestamp)
		e.Topic = id.Bytes
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("index of segment %s: %w", segmentKey, err)
	}
	return es, nil
}

// AcquireLease implements metastore.Store.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	rows, err := s.pool.Query(ctx, `INSERT INTO leases (name, holder, expires_at)
		VALUES ($1, $2, clock_timestamp() + $3 * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= clock_timestamp()
		RETURNING holder`, name, holder, ttl.Microseconds())
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return len(got) == 1, nil
}

// ReleaseLease implements metastore.Store.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// Agents implements metastore.Store.
func (s *Store) Agents(ctx context.Context) ([]metastore.Agent, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, addr, zone, expires_at, listeners, node_id FROM agents
		WHERE expires_at > clock_timestamp() ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.Agent, error) {
		var a metastore.Agent
		var ls string
		if err := r.Scan(&a.ID, &a.Addr, &a.Zone, &a.Expires, &ls, &a.NodeID); err != nil {
			return a, err
		}
		a.Listeners = metastore.ParseAgentListeners(ls)
		return a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	if as == nil {
		as = []metastore.Agent{}
	}
	return as, nil
}
