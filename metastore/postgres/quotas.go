package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/siltstream/silt/metastore"
)

// notifyQuotas tells every agent's WatchCommits that the client quotas
// changed; it is sent when the transaction commits.
const notifyQuotas = "SELECT pg_notify('silt_quotas', 'changed\t')"

const quotaEntityColumns = "user_kind, user_name, client_kind, client_name, ip_kind, ip_name"

// ClientQuotas implements metastore.QuotaStore.
func (s *Store) ClientQuotas(ctx context.Context) ([]metastore.ClientQuota, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+quotaEntityColumns+", quota_key, value FROM client_quotas ORDER BY "+
		`user_kind, user_name COLLATE "C", client_kind, client_name COLLATE "C", ip_kind, ip_name COLLATE "C", quota_key COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list client quotas: %w", err)
	}
	defer rows.Close()
	var out []metastore.ClientQuota
	for rows.Next() {
		var e metastore.QuotaEntity
		var uk, ck, ik int16
		var key string
		var v float64
		if err := rows.Scan(&uk, &e.User.Name, &ck, &e.ClientID.Name, &ik, &e.IP.Name, &key, &v); err != nil {
			return nil, fmt.Errorf("list client quotas: %w", err)
		}
		e.User.Kind, e.ClientID.Kind, e.IP.Kind = metastore.QuotaNameKind(uk), metastore.QuotaNameKind(ck), metastore.QuotaNameKind(ik)
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
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, a := range alts {
			e := a.Entity
			ent := []any{int16(e.User.Kind), e.User.Name, int16(e.ClientID.Kind), e.ClientID.Name, int16(e.IP.Kind), e.IP.Name}
			for _, k := range a.Remove {
				if _, err := tx.Exec(ctx, "DELETE FROM client_quotas WHERE user_kind = $1 AND user_name = $2 AND client_kind = $3 AND client_name = $4 AND ip_kind = $5 AND ip_name = $6 AND quota_key = $7",
					append(ent, k)...); err != nil {
					return err
				}
			}
			for k, v := range a.Set {
				if _, err := tx.Exec(ctx, "INSERT INTO client_quotas ("+quotaEntityColumns+", quota_key, value) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "+
					"ON CONFLICT ("+quotaEntityColumns+", quota_key) DO UPDATE SET value = excluded.value",
					append(ent, k, v)...); err != nil {
					return err
				}
			}
		}
		_, err := tx.Exec(ctx, notifyQuotas)
		return err
	})
	if err != nil {
		return fmt.Errorf("alter client quotas: %w", err)
	}
	return nil
}
