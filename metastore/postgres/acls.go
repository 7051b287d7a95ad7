package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/siltstream/silt/metastore"
)

const aclColumns = "resource_type, resource_name, pattern_type, principal, host, operation, permission"

// notifyACLs tells every agent's WatchCommits that the ACLs changed; it is
// sent when the transaction commits.
const notifyACLs = "SELECT pg_notify('silt_acls', 'changed\t')"

// CreateACLs implements metastore.ACLStore.
func (s *Store) CreateACLs(ctx context.Context, acls []metastore.ACL) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, b := range acls {
			if _, err := tx.Exec(ctx, "INSERT INTO acls ("+aclColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
				int16(b.ResourceType), b.ResourceName, int16(b.PatternType), b.Principal, b.Host, int16(b.Operation), int16(b.Permission)); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, notifyACLs)
		return err
	})
	if err != nil {
		return fmt.Errorf("create acls: %w", err)
	}
	return nil
}

// ACLs implements metastore.ACLStore.
func (s *Store) ACLs(ctx context.Context, f metastore.ACLFilter) ([]metastore.ACL, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+aclColumns+" FROM acls ORDER BY "+aclColumns)
	if err != nil {
		return nil, fmt.Errorf("list acls: %w", err)
	}
	all, err := scanACLs(rows)
	if err != nil {
		return nil, fmt.Errorf("list acls: %w", err)
	}
	var out []metastore.ACL
	for _, b := range all {
		if f.Matches(b) {
			out = append(out, b)
		}
	}
	return out, nil
}

// DeleteACLs implements metastore.ACLStore.
func (s *Store) DeleteACLs(ctx context.Context, fs []metastore.ACLFilter) ([][]metastore.ACL, error) {
	out := make([][]metastore.ACL, len(fs))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for i := range out {
			out[i] = nil
		}
		// Lock the table against concurrent creates, so what is
		// returned is exactly what was deleted.
		if _, err := tx.Exec(ctx, "LOCK TABLE acls IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT "+aclColumns+" FROM acls ORDER BY "+aclColumns)
		if err != nil {
			return err
		}
		all, err := scanACLs(rows)
		if err != nil {
			return err
		}
		deleted := 0
		for _, b := range all {
			matched := false
			for i, f := range fs {
				if f.Matches(b) {
					out[i] = append(out[i], b)
					matched = true
				}
			}
			if !matched {
				continue
			}
			deleted++
			if _, err := tx.Exec(ctx, "DELETE FROM acls WHERE resource_type = $1 AND resource_name = $2 AND pattern_type = $3 AND principal = $4 AND host = $5 AND operation = $6 AND permission = $7",
				int16(b.ResourceType), b.ResourceName, int16(b.PatternType), b.Principal, b.Host, int16(b.Operation), int16(b.Permission)); err != nil {
				return err
			}
		}
		if deleted == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, notifyACLs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete acls: %w", err)
	}
	return out, nil
}

func scanACLs(rows pgx.Rows) ([]metastore.ACL, error) {
	defer rows.Close()
	var out []metastore.ACL
	for rows.Next() {
		var b metastore.ACL
		var rt, pt, op, perm int16
		if err := rows.Scan(&rt, &b.ResourceName, &pt, &b.Principal, &b.Host, &op, &perm); err != nil {
			return nil, err
		}
		b.ResourceType, b.PatternType = metastore.ACLResourceType(rt), metastore.ACLPatternType(pt)
		b.Operation, b.Permission = metastore.ACLOperation(op), metastore.ACLPermission(perm)
		out = append(out, b)
	}
	return out, rows.Err()
}
