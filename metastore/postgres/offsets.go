package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/siltstream/silt/metastore"
)

// CommitOffsets implements metastore.Store.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []metastore.CommittedOffset) error {
	if err := commitOffsets(ctx, s.pool, group, offsets); err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	return nil
}

// commitOffsets writes offsets of group through q (the pool, or a
// transaction they belong to).
func commitOffsets(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, group string, offsets []metastore.CommittedOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	n := len(offsets)
	var (
		topics   = make([]string, n)
		parts    = make([]int32, n)
		offs     = make([]int64, n)
		epochs   = make([]int32, n)
		metadata = make([]string, n)
	)
	for i, o := range offsets {
		topics[i], parts[i], offs[i], epochs[i], metadata[i] = o.Topic, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata
	}
	// commit_offsets (migrations/0012_offset_log.sql) numbers the rows in
	// the group's partition of __consumer_offsets as it writes them.
	_, err := q.Exec(ctx, `SELECT commit_offsets($1, $2, $3, $4, $5, $6, $7)`,
		group, metastore.OffsetsPartition(group), topics, parts, offs, epochs, metadata)
	return err
}

// FetchOffsets implements metastore.Store.
func (s *Store) FetchOffsets(ctx context.Context, group string) ([]metastore.CommittedOffset, error) {
	rows, err := s.pool.Query(ctx, `SELECT topic, partition, "offset", leader_epoch, metadata
		FROM consumer_offsets WHERE group_id = $1 ORDER BY topic, partition`, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	os, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.CommittedOffset, error) {
		var o metastore.CommittedOffset
		err := r.Scan(&o.Topic, &o.Partition, &o.Offset, &o.LeaderEpoch, &o.Metadata)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	if os == nil {
		os = []metastore.CommittedOffset{}
	}
	return os, nil
}
