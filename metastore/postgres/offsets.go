package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/siltstream/silt/metastore"
)

// CommitOffsets implements metastore.Store.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []metastore.CommittedOffset) error {
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
	// DISTINCT ON keeps the last entry when a partition appears twice, since
	// ON CONFLICT cannot touch one row twice in a statement.
	_, err := s.pool.Exec(ctx, `INSERT INTO consumer_offsets (group_id, topic, partition, "offset", leader_epoch, metadata)
		SELECT DISTINCT ON (t, p) $1, t, p, o, e, m
		FROM unnest($2::text[], $3::integer[], $4::bigint[], $5::integer[], $6::text[]) WITH ORDINALITY AS u(t, p, o, e, m, i)
		ORDER BY t, p, i DESC
		ON CONFLICT (group_id, topic, partition) DO UPDATE
		SET "offset" = excluded."offset", leader_epoch = excluded.leader_epoch, metadata = excluded.metadata`,
		group, topics, parts, offs, epochs, metadata)
	if err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	return nil
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
