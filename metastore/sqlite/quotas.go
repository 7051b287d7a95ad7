package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/siltstream/silt/metastore"
)

const quotaEntityColumns = "user_kind, user_name, client_kind, client_name, ip_kind, ip_name"

// ClientQuotas implements metastore.QuotaStore.
func (s *Store) ClientQuotas(ctx context.Context) ([]metastore.ClientQuota, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT "+quotaEntityColumns+", quota_key, value FROM client_quotas ORDER BY "+quotaEntityColumns+", quota_key")
	if err != nil {
		return nil, fmt.Errorf("list client quotas: %w", err)
	}
	defer rows.Close()
	var out []metastore.ClientQuota
	for rows.Next() {
		var e metastore.QuotaEntity
		var key string
		var v float64
		if err := rows.Scan(&e.User.Kind, &e.User.Name, &e.ClientID.Kind, &e.ClientID.Name, &e.IP.Kind, &e.IP.Name, &key, &v); err != nil {
			return nil, fmt.Errorf("list client quotas: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].Entity != e {
			out = append(out, metastore.ClientQuota{Entity: e, Values: make(map[string]float64)})
		}
		out[len(out)-1].Values[key] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list client quotas: %w", err)
	}
	return out, nil
}

// AlterClientQuotas implements metastore.QuotaStore.
func (s *Store) AlterClientQuotas(ctx context.Context, alts []metastore.QuotaAlteration) error {
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		for _, a := range alts {
			e := a.Entity
			ent := []any{e.User.Kind, e.User.Name, e.ClientID.Kind, e.ClientID.Name, e.IP.Kind, e.IP.Name}
			for _, k := range a.Remove {
				if _, err := tx.ExecContext(ctx, "DELETE FROM client_quotas WHERE user_kind = ? AND user_name = ? AND client_kind = ? AND client_name = ? AND ip_kind = ? AND ip_name = ? AND quota_key = ?",
					append(ent, k)...); err != nil {
					return err
				}
			}
			for k, v := range a.Set {
				if _, err := tx.ExecContext(ctx, "INSERT INTO client_quotas ("+quotaEntityColumns+", quota_key, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "+
					"ON CONFLICT ("+quotaEntityColumns+", quota_key) DO UPDATE SET value = excluded.value",
					append(ent, k, v)...); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("alter client quotas: %w", err)
	}
	return nil
}
