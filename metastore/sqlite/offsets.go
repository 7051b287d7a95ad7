package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/siltstream/silt/metastore"
)

// CommitOffsets implements metastore.Store.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []metastore.CommittedOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		return writeOffsets(ctx, tx, group, offsets)
	})
	if err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	return nil
}

// FetchOffsets implements metastore.Store.
func (s *Store) FetchOffsets(ctx context.Context, group string) ([]metastore.CommittedOffset, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT topic, partition, "offset", leader_epoch, metadata
		FROM consumer_offsets WHERE group_id = ? ORDER BY topic, partition`, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	defer rows.Close()
	out := []metastore.CommittedOffset{}
	for rows.Next() {
		var o metastore.CommittedOffset
		if err := rows.Scan(&o.Topic, &o.Partition, &o.Offset, &o.LeaderEpoch, &o.Metadata); err != nil {
			return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	return out, nil
}
