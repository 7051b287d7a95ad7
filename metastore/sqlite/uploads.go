package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/siltstream/silt/metastore"
)

// RecordUpload implements metastore.Store.
func (s *Store) RecordUpload(ctx context.Context, key string, agentID string) error {
	return s.RecordUploads(ctx, []string{key}, agentID)
}

// RecordUploads implements metastore.Store.
func (s *Store) RecordUploads(ctx context.Context, keys []string, agentID string) error {
	keysJSON, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	// "WHERE true": SQLite needs it to parse an upsert after a SELECT.
	_, err = s.write.ExecContext(ctx, `INSERT INTO segments (key, agent, state, recorded_at)
		SELECT value, ?, 'uploading', ? FROM json_each(?) WHERE true
		ON CONFLICT (key) DO NOTHING`, agentID, now(), string(keysJSON))
	if err != nil {
		return fmt.Errorf("record uploads %v: %w", keys, err)
	}
	return nil
}

// Orphans implements metastore.Store.
func (s *Store) Orphans(ctx context.Context, olderThan time.Time) ([]metastore.Upload, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT key, agent, recorded_at FROM segments
		WHERE state = 'uploading' AND recorded_at < ? ORDER BY recorded_at, key`, olderThan.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("list orphans: %w", err)
	}
	defer rows.Close()
	var ups []metastore.Upload
	for rows.Next() {
		var (
			u  metastore.Upload
			at int64
		)
		if err := rows.Scan(&u.Key, &u.AgentID, &at); err != nil {
			return nil, fmt.Errorf("list orphans: %w", err)
		}
		u.RecordedAt = time.Unix(0, at)
		ups = append(ups, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list orphans: %w", err)
	}
	return ups, nil
}

// ForgetUpload implements metastore.Store.
func (s *Store) ForgetUpload(ctx context.Context, key string) (bool, error) {
	res, err := s.write.ExecContext(ctx, "DELETE FROM segments WHERE key = ? AND state = 'uploading'", key)
	if err != nil {
		return false, fmt.Errorf("forget upload %s: %w", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("forget upload %s: %w", key, err)
	}
	return n == 1, nil
}
