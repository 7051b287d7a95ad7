package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/siltstream/silt/metastore"
)

// afterMigration holds the steps of a migration that SQL alone cannot do,
// run in the migration's transaction right after its SQL.
var afterMigration = map[int]func(ctx context.Context, tx pgx.Tx) error{
	12: numberOffsetLog,
}

// numberOffsetLog gives the offsets committed before migration 0012 their
// partition of __consumer_offsets (Kafka's hash of the group id, which is
// computed here rather than in SQL) and sequence numbers, in (group, topic,
// partition) order.
func numberOffsetLog(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT DISTINCT group_id FROM consumer_offsets WHERE part = -1`)
	if err != nil {
		return fmt.Errorf("number offset log: %w", err)
	}
	groups, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("number offset log: %w", err)
	}
	for _, g := range groups {
		if _, err := tx.Exec(ctx, `UPDATE consumer_offsets SET part = $2 WHERE group_id = $1`, g, metastore.OffsetsPartition(g)); err != nil {
			return fmt.Errorf("number offset log: group %s: %w", g, err)
		}
	}
	_, err = tx.Exec(ctx, `UPDATE consumer_offsets c SET seq = n.seq, commit_ms = (extract(epoch FROM now()) * 1000)::bigint
		FROM (SELECT group_id, topic, partition,
			row_number() OVER (PARTITION BY part ORDER BY group_id, topic, partition) - 1 AS seq
			FROM consumer_offsets) AS n
		WHERE c.group_id = n.group_id AND c.topic = n.topic AND c.partition = n.partition`)
	if err != nil {
		return fmt.Errorf("number offset log: %w", err)
	}
	_, err = tx.Exec(ctx, `UPDATE consumer_offsets_log l
		SET next_seq = (SELECT count(*) FROM consumer_offsets c WHERE c.part = l.part)`)
	if err != nil {
		return fmt.Errorf("number offset log: %w", err)
	}
	return nil
}

// OffsetLog implements metastore.OffsetLogStore.
func (s *Store) OffsetLog(ctx context.Context, part int32, from, end int64, limit int, maxBytes int64) ([]metastore.OffsetLogEntry, error) {
	// The running total of the rows before each row decides: the first row
	// always (nothing before it), the others while the total is below
	// maxBytes. The sizes are metastore.OffsetLogEntrySize's.
	rows, err := s.pool.Query(ctx, `SELECT seq, group_id, topic, partition, "offset", leader_epoch, metadata, commit_ms
		FROM (
			SELECT *, coalesce(sum(octet_length(group_id) + octet_length(topic) + octet_length(metadata) + $6)
				OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
			FROM (SELECT * FROM consumer_offsets WHERE part = $1 AND seq >= $2 AND seq < $3 ORDER BY seq LIMIT $4) AS page
		) AS r
		WHERE before < $5 ORDER BY seq`,
		part, from, end, limit, max(maxBytes, 1), metastore.OffsetLogEntrySize("", "", ""))
	if err != nil {
		return nil, fmt.Errorf("read offset log partition %d: %w", part, err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.OffsetLogEntry, error) {
		var e metastore.OffsetLogEntry
		err := r.Scan(&e.Seq, &e.Group, &e.Topic, &e.Partition, &e.Offset, &e.LeaderEpoch, &e.Metadata, &e.CommitTimeMs)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read offset log partition %d: %w", part, err)
	}
	return es, nil
}

// OffsetLogEnd implements metastore.OffsetLogStore.
func (s *Store) OffsetLogEnd(ctx context.Context, part int32) (int64, error) {
	var end int64
	if err := s.pool.QueryRow(ctx, `SELECT next_seq FROM consumer_offsets_log WHERE part = $1`, part).Scan(&end); err != nil {
		return 0, fmt.Errorf("read offset log end of partition %d: %w", part, err)
	}
	return end, nil
}
