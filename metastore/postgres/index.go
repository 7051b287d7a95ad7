package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/siltstream/silt/metastore"
)

// indexColumns are an index row's columns but its partition, with its
// segment's key, read from index_entries e joined with segments s (see
// indexFrom).
const indexColumns = "e.base_offset, e.last_offset, s.key, e.position, e.length, e.batch_count, e.min_ts, e.max_ts"

// indexFrom joins index rows with their segments' keys: a segment record
// stays while an index row references it (metastore.GCStore).
const indexFrom = "index_entries e JOIN segments s ON s.id = e.segment_id"

// partitionIDOf is the id of partition $2 of the topic with id $1: index
// rows name their partition by it (migration 0021). Compared with
// e.partition_id it is a constant to the planner, so a scan of the primary
// key returns the partition's rows in offset order.
const partitionIDOf = "(SELECT id FROM partitions WHERE topic_id = $1 AND partition = $2)"

// scanIndexEntry reads indexColumns into a row of partition tp.
func scanIndexEntry(r pgx.Row, tp metastore.TopicPartition) (metastore.IndexEntry, error) {
	e := metastore.IndexEntry{TopicPartition: tp}
	err := r.Scan(&e.BaseOffset, &e.LastOffset, &e.SegmentKey, &e.Position, &e.Length,
		&e.BatchCount, &e.MinTimestamp, &e.MaxTimestamp)
	return e, err
}

// Index implements metastore.Store. A limit <= 0 means no row limit.
//
// The inner query starts at the chunk holding offset by primary key (chunks
// of a partition are contiguous and do not overlap), so a tailing read costs
// an index seek, not a scan of the partition's history.
func (s *Store) Index(ctx context.Context, tp metastore.TopicPartition, offset int64, maxBytes int64, limit int) ([]metastore.IndexEntry, error) {
	var lim *int64
	if limit > 0 {
		l := int64(limit)
		lim = &l
	}
	rows, err := s.pool.Query(ctx, `SELECT `+indexColumns+` FROM (
			SELECT e.*, sum(length) OVER (ORDER BY base_offset) - length AS before
			FROM (
				SELECT * FROM index_entries
				WHERE partition_id = `+partitionIDOf+` AND last_offset >= $3
				  AND base_offset >= coalesce((
					SELECT base_offset FROM index_entries
					WHERE partition_id = `+partitionIDOf+` AND base_offset <= $3
					ORDER BY base_offset DESC LIMIT 1), $3)
				ORDER BY base_offset
				LIMIT $5
			) e
		) e JOIN segments s ON s.id = e.segment_id
		WHERE e.before < greatest($4::bigint, 1)
		ORDER BY e.base_offset`,
		uuidArg(tp.Topic), tp.Partition, offset, maxBytes, lim)
	if err != nil {
		return nil, fmt.Errorf("index of %x/%d from %d: %w", tp.Topic[:], tp.Partition, offset, err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.IndexEntry, error) { return scanIndexEntry(r, tp) })
	if err != nil {
		return nil, fmt.Errorf("index of %x/%d from %d: %w", tp.Topic[:], tp.Partition, offset, err)
	}
	return es, nil
}

func (s *Store) indexRow(ctx context.Context, what string, tp metastore.TopicPartition, query string, args ...any) (metastore.IndexEntry, bool, error) {
	e, err := scanIndexEntry(s.pool.QueryRow(ctx, query, args...), tp)
	if errors.Is(err, pgx.ErrNoRows) {
		return metastore.IndexEntry{}, false, nil
	}
	if err != nil {
		return metastore.IndexEntry{}, false, fmt.Errorf("%s of %x/%d: %w", what, tp.Topic[:], tp.Partition, err)
	}
	return e, true, nil
}

// IndexByTimestamp implements metastore.Store. index_ts_start (migration
// 0017) finds by binary search the first row whose running maximum
// timestamp reaches ts; no row before it has a timestamp that high, and
// usually it is the answer itself (not when the running maximum came from
// rows retention has deleted since, hence the scan on from it).
func (s *Store) IndexByTimestamp(ctx context.Context, tp metastore.TopicPartition, ts int64) (metastore.IndexEntry, bool, error) {
	return s.indexRow(ctx, "index by timestamp", tp, `SELECT `+indexColumns+` FROM `+indexFrom+`
		WHERE e.partition_id = `+partitionIDOf+` AND e.max_ts >= $3
		  AND e.base_offset >= (SELECT index_ts_start(`+partitionIDOf+`, $3))
		ORDER BY e.base_offset LIMIT 1`,
		uuidArg(tp.Topic), tp.Partition, ts)
}

// IndexMaxTimestamp implements metastore.Store. The last row's running
// maximum is at least every row's max_ts, so the first row reaching it
// holds the largest timestamp, unless that maximum came from rows deleted
// since: then (rarely) the second branch, a scan of the partition's rows,
// answers. Append runs its branches in order and LIMIT stops it after the
// first row.
func (s *Store) IndexMaxTimestamp(ctx context.Context, tp metastore.TopicPartition) (metastore.IndexEntry, bool, error) {
	return s.indexRow(ctx, "index max timestamp", tp, `WITH m AS MATERIALIZED (
			SELECT run_max_ts AS ts, index_ts_start(partition_id, run_max_ts) AS start
			FROM (SELECT partition_id, run_max_ts FROM index_entries
				WHERE partition_id = `+partitionIDOf+`
				ORDER BY base_offset DESC LIMIT 1) last)
		(SELECT `+indexColumns+` FROM m, `+indexFrom+`
		WHERE e.partition_id = `+partitionIDOf+` AND e.base_offset >= m.start AND e.max_ts >= m.ts
		ORDER BY e.base_offset LIMIT 1)
		UNION ALL
		(SELECT `+indexColumns+` FROM `+indexFrom+`
		WHERE e.partition_id = `+partitionIDOf+`
		ORDER BY e.max_ts DESC, e.base_offset LIMIT 1)
		LIMIT 1`,
		uuidArg(tp.Topic), tp.Partition)
}

// PartitionBytes implements metastore.Store.
func (s *Store) PartitionBytes(ctx context.Context, topic metastore.TopicID) (map[int32]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT p.partition, sum(e.length)::bigint
		FROM partitions p JOIN index_entries e ON e.partition_id = p.id
		WHERE p.topic_id = $1 GROUP BY p.partition`, uuidArg(topic))
	if err != nil {
		return nil, fmt.Errorf("partition bytes: %w", err)
	}
	defer rows.Close()
	out := make(map[int32]int64)
	for rows.Next() {
		var p int32
		var n int64
		if err := rows.Scan(&p, &n); err != nil {
			return nil, fmt.Errorf("partition bytes: %w", err)
		}
		out[p] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("partition bytes: %w", err)
	}
	return out, nil
}
