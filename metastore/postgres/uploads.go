package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/siltstream/silt/metastore"
)

// RecordUpload implements metastore.Store.
func (s *Store) RecordUpload(ctx context.Context, key string, agentID string) error {
	return s.RecordUploads(ctx, []string{key}, agentID)
}

// RecordUploads implements metastore.Store.
func (s *Store) RecordUploads(ctx context.Context, keys []string, agentID string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO segments (key, agent, state)
		SELECT k, $2, 'uploading' FROM unnest($1::text[]) AS k
		WHERE NOT EXISTS (SELECT 1 FROM gc_objects g WHERE g.key = k)
		ON CONFLICT (key) DO NOTHING`, keys, agentID)
	if err != nil {
		return fmt.Errorf("record uploads %v: %w", keys, err)
	}
	return nil
}

// Orphans implements metastore.Store.
func (s *Store) Orphans(ctx context.Context, olderThan time.Time) ([]metastore.Upload, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, agent, recorded_at FROM segments
		WHERE state = 'uploading' AND recorded_at < $1 ORDER BY recorded_at, key`, olderThan)
	if err != nil {
		return nil, fmt.Errorf("list orphans: %w", err)
	}
	ups, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.Upload, error) {
		var u metastore.Upload
		err := r.Scan(&u.Key, &u.AgentID, &u.RecordedAt)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("list orphans: %w", err)
	}
	return ups, nil
}

// ForgetUpload implements metastore.Store.
func (s *Store) ForgetUpload(ctx context.Context, key string) (bool, error) {
	// One statement: the record leaves and the object is doomed together,
	// so there is no moment when the upload can neither commit nor be
	// collected.
	var n int
	err := s.pool.QueryRow(ctx, `WITH d AS (
			DELETE FROM segments WHERE key = $1 AND state = 'uploading' RETURNING key, size
		), i AS (
			INSERT INTO gc_objects (key, size) SELECT key, coalesce(size, 0) FROM d
			ON CONFLICT (key) DO NOTHING
		)
		SELECT count(*) FROM d`, key).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("forget upload %s: %w", key, err)
	}
	return n == 1, nil
}

// AbandonUpload implements metastore.Store. It restarts the grace period of
// an object already queued: its late write came after the queueing.
func (s *Store) AbandonUpload(ctx context.Context, key string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO gc_objects (key, size)
		SELECT $1, 0 WHERE NOT EXISTS (SELECT 1 FROM segments WHERE key = $1)
		ON CONFLICT (key) DO UPDATE SET doomed_at = now()`, key)
	if err != nil {
		return fmt.Errorf("abandon upload %s: %w", key, err)
	}
	return nil
}
