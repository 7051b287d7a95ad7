package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/siltstream/silt/metastore"
)

// ScramCredential implements metastore.CredentialStore.
func (s *Store) ScramCredential(ctx context.Context, user, mechanism string) (metastore.ScramCredential, error) {
	c := metastore.ScramCredential{ScramCredentialKey: metastore.ScramCredentialKey{User: user, Mechanism: mechanism}}
	err := s.read.QueryRowContext(ctx, `SELECT salt, iterations, stored_key, server_key
		FROM scram_credentials WHERE username = ? AND mechanism = ?`, user, mechanism).
		Scan(&c.Salt, &c.Iterations, &c.StoredKey, &c.ServerKey)
	if errors.Is(err, sql.ErrNoRows) {
		return metastore.ScramCredential{}, fmt.Errorf("scram credential of %s for %s: %w", user, mechanism, metastore.ErrUnknownCredential)
	}
	if err != nil {
		return metastore.ScramCredential{}, fmt.Errorf("scram credential of %s for %s: %w", user, mechanism, err)
	}
	return c, nil
}

// ScramCredentials implements metastore.CredentialStore.
func (s *Store) ScramCredentials(ctx context.Context, users []string) ([]metastore.ScramCredential, error) {
	q := `SELECT username, mechanism, salt, iterations, stored_key, server_key FROM scram_credentials`
	var args []any
	if users != nil {
		if len(users) == 0 {
			return []metastore.ScramCredential{}, nil
		}
		q += ` WHERE username IN (?` + strings.Repeat(", ?", len(users)-1) + `)`
		for _, u := range users {
			args = append(args, u)
		}
	}
	rows, err := s.read.QueryContext(ctx, q+` ORDER BY username, mechanism`, args...)
	if err != nil {
		return nil, fmt.Errorf("list scram credentials: %w", err)
	}
	defer rows.Close()
	out := []metastore.ScramCredential{}
	for rows.Next() {
		var c metastore.ScramCredential
		if err := rows.Scan(&c.User, &c.Mechanism, &c.Salt, &c.Iterations, &c.StoredKey, &c.ServerKey); err != nil {
			return nil, fmt.Errorf("list scram credentials: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list scram credentials: %w", err)
	}
	return out, nil
}

// AlterScramCredentials implements metastore.CredentialStore.
func (s *Store) AlterScramCredentials(ctx context.Context, deletions []metastore.ScramCredentialKey, upserts []metastore.ScramCredential) ([]metastore.ScramCredentialKey, error) {
	var notFound []metastore.ScramCredentialKey
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		notFound = nil
		for _, d := range deletions {
			res, err := tx.ExecContext(ctx, `DELETE FROM scram_credentials WHERE username = ? AND mechanism = ?`, d.User, d.Mechanism)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				notFound = append(notFound, d)
			}
		}
		for _, c := range upserts {
			if _, err := tx.ExecContext(ctx, `INSERT INTO scram_credentials (username, mechanism, salt, iterations, stored_key, server_key, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (username, mechanism) DO UPDATE SET salt = excluded.salt, iterations = excluded.iterations,
					stored_key = excluded.stored_key, server_key = excluded.server_key, updated_at = excluded.updated_at`,
				c.User, c.Mechanism, c.Salt, c.Iterations, c.StoredKey, c.ServerKey, now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("alter scram credentials: %w", err)
	}
	return notFound, nil
}
