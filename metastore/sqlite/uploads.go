package sqlite

import (
	"context"
	"database/sql"
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
	// A WHERE clause: SQLite needs one to parse an upsert after a SELECT.
	// Keys already doomed are never recorded again.
	_, err = s.write.ExecContext(ctx, `INSERT INTO segments (key, agent, state, recorded_at)
		SELECT value, ?, 'uploading', ? FROM json_each(?) WHERE value NOT IN (SELECT key FROM gc_objects)
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
	// One transaction: the record leaves and the object is doomed together.
	var n int64
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM segments WHERE key = ? AND state = 'uploading'", key)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO gc_objects (key, size, doomed_at) VALUES (?, 0, ?) ON CONFLICT (key) DO NOTHING", key, now())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("forget upload %s: %w", key, err)
	}
	return n == 1, nil
}

// AbandonUpload implements metastore.Store.
func (s *Store) AbandonUpload(ctx context.Context, key string) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO gc_objects (key, size, doomed_at)
		SELECT ?, 0, ? WHERE NOT EXISTS (SELECT 1 FROM segments WHERE key = ?)
		ON CONFLICT (key) DO UPDATE SET doomed_at = excluded.doomed_at`, key, now(), key)
	if err != nil {
		return fmt.Errorf("abandon upload %s: %w", key, err)
	}
	return nil
}
