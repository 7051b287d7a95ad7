package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/siltstream/silt/metastore"
)

// ScramCredential implements metastore.CredentialStore.
func (s *Store) ScramCredential(ctx context.Context, user, mechanism string) (metastore.ScramCredential, error) {
	c := metastore.ScramCredential{ScramCredentialKey: metastore.ScramCredentialKey{User: user, Mechanism: mechanism}}
	err := s.pool.QueryRow(ctx, `SELECT salt, iterations, stored_key, server_key
		FROM scram_credentials WHERE username = $1 AND mechanism = $2`, user, mechanism).
		Scan(&c.Salt, &c.Iterations, &c.StoredKey, &c.ServerKey)
	if errors.Is(err, pgx.ErrNoRows) {
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
		q += ` WHERE username = ANY($1::text[])`
		args = append(args, users)
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY username, mechanism`, args...)
	if err != nil {
		return nil, fmt.Errorf("list scram credentials: %w", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.ScramCredential, error) {
		var c metastore.ScramCredential
		err := r.Scan(&c.User, &c.Mechanism, &c.Salt, &c.Iterations, &c.StoredKey, &c.ServerKey)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("list scram credentials: %w", err)
	}
	if cs == nil {
		cs = []metastore.ScramCredential{}
	}
	return cs, nil
}

// AlterScramCredentials implements metastore.CredentialStore.
func (s *Store) AlterScramCredentials(ctx context.Context, deletions []metastore.ScramCredentialKey, upserts []metastore.ScramCredential) ([]metastore.ScramCredentialKey, error) {
	var notFound []metastore.ScramCredentialKey
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		notFound = nil
		for _, d := range deletions {
			tag, err := tx.Exec(ctx, `DELETE FROM scram_credentials WHERE username = $1 AND mechanism = $2`, d.User, d.Mechanism)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				notFound = append(notFound, d)
			}
		}
		for _, c := range upserts {
			if _, err := tx.Exec(ctx, `INSERT INTO scram_credentials (username, mechanism, salt, iterations, stored_key, server_key)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (username, mechanism) DO UPDATE SET salt = excluded.salt, iterations = excluded.iterations,
					stored_key = excluded.stored_key, server_key = excluded.server_key, updated_at = now()`,
				c.User, c.Mechanism, c.Salt, c.Iterations, c.StoredKey, c.ServerKey); err != nil {
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
