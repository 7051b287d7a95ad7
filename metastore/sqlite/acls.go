package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/siltstream/silt/metastore"
)

const aclColumns = "resource_type, resource_name, pattern_type, principal, host, operation, permission"

// CreateACLs implements metastore.ACLStore.
func (s *Store) CreateACLs(ctx context.Context, acls []metastore.ACL) error {
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		for _, b := range acls {
			if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO acls ("+aclColumns+") VALUES (?, ?, ?, ?, ?, ?, ?)",
				b.ResourceType, b.ResourceName, b.PatternType, b.Principal, b.Host, b.Operation, b.Permission); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create acls: %w", err)
	}
	return nil
}

// ACLs implements metastore.ACLStore.
func (s *Store) ACLs(ctx context.Context, f metastore.ACLFilter) ([]metastore.ACL, error) {
	all, err := readACLs(ctx, s.read)
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
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		all, err := readACLs(ctx, tx)
		if err != nil {
			return err
		}
		for i := range out {
			out[i] = nil
		}
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
			if _, err := tx.ExecContext(ctx, "DELETE FROM acls WHERE resource_type = ? AND resource_name = ? AND pattern_type = ? AND principal = ? AND host = ? AND operation = ? AND permission = ?",
				b.ResourceType, b.ResourceName, b.PatternType, b.Principal, b.Host, b.Operation, b.Permission); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete acls: %w", err)
	}
	return out, nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func readACLs(ctx context.Context, q queryer) ([]metastore.ACL, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+aclColumns+" FROM acls ORDER BY "+aclColumns)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []metastore.ACL
	for rows.Next() {
		var b metastore.ACL
		if err := rows.Scan(&b.ResourceType, &b.ResourceName, &b.PatternType, &b.Principal, &b.Host, &b.Operation, &b.Permission); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
