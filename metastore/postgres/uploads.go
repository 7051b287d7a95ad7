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
	tag, err := s.pool.Exec(ctx, "DELETE FROM segments WHERE key = $1 AND state = 'uploading'", key)
	if err != nil {
		return false, fmt.Errorf("forget upload %s: %w", key, err)
	}
	return tag.RowsAffected() == 1, nil
}
