package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/siltstream/silt/metastore"
)

// AdvanceLogStart implements metastore.Store. The partition row is locked
// as commit_flush locks it, so the high watermark checked is the one the
// log start moves against.
func (s *Store) AdvanceLogStart(ctx context.Context, tp metastore.TopicPartition, offset int64) (int64, error) {
	var logStart int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		p, err := lockPartition(ctx, tx, tp)
		if err != nil {
			return err
		}
		if offset == -1 {
			offset = p.hw
		}
		if offset < 0 || offset > p.hw {
			return fmt.Errorf("%w: %d, high watermark %d", metastore.ErrOffsetOutOfRange, offset, p.hw)
		}
		logStart = p.logStart
		if offset <= p.logStart {
			return nil
		}
		logStart = offset
		_, _, err = moveLogStart(ctx, tx, p, offset)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("advance log start of %x/%d to %d: %w", tp.Topic[:], tp.Partition, offset, err)
	}
	return logStart, nil
}

// ApplyRetention implements metastore.Store. Where the log should start is
// read first without a lock: rows are only added after the high watermark
// and removed below the log start, so that answer can only grow, and a
// stale one is safe (it moves the log start less far). Only a partition
// whose log start moves is locked.
func (s *Store) ApplyRetention(ctx context.Context, tp metastore.TopicPartition, p metastore.RetentionPolicy) (metastore.RetentionResult, error) {
	var (
		hw, ls int64
		res    metastore.RetentionResult
	)
	if err := s.pool.QueryRow(ctx, "SELECT high_watermark, log_start_offset FROM partitions WHERE topic_id = $1 AND partition = $2",
		uuidArg(tp.Topic), tp.Partition).Scan(&hw, &ls); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			err = metastore.ErrUnknownTopic
		}
		return res, fmt.Errorf("apply retention to %x/%d: %w", tp.Topic[:], tp.Partition, err)
	}
	target := ls
	if p.ExpireBefore != math.MinInt64 {
		first, err := s.firstUnexpired(ctx, tp, p.ExpireBefore, hw)
		if err != nil {
			return res, fmt.Errorf("apply retention to %x/%d: %w", tp.Topic[:], tp.Partition, err)
		}
		target = max(target, first)
	}
	if p.MaxBytes >= 0 {
		// Kafka deletes the oldest segment while the bytes after it are
		// still at least retention.bytes: the first row kept is the first
		// whose successors hold fewer.
		var first *int64
		if err := s.pool.QueryRow(ctx, `SELECT min(base_offset) FROM (
				SELECT base_offset, sum(length) OVER (ORDER BY base_offset DESC) - length AS after
				FROM index_entries WHERE partition_id = `+partitionIDOf+`) r
			WHERE after < $3`, uuidArg(tp.Topic), tp.Partition, p.MaxBytes).Scan(&first); err != nil {
			return res, fmt.Errorf("apply retention to %x/%d: %w", tp.Topic[:], tp.Partition, err)
		}
		target = max(target, valueOr(first, hw))
	}
	res.LogStartOffset = ls
	if target <= ls {
		return res, nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		p, err := lockPartition(ctx, tx, tp)
		if err != nil {
			return err
		}
		res.LogStartOffset = p.logStart
		if target <= p.logStart {
			return nil // moved meanwhile (DeleteRecords)
		}
		res.LogStartOffset, res.Moved = target, true
		res.ExpiredRows, res.ExpiredBytes, err = moveLogStart(ctx, tx, p, target)
		return err
	})
	if err != nil {
		return metastore.RetentionResult{}, fmt.Errorf("apply retention to %x/%d: %w", tp.Topic[:], tp.Partition, err)
	}
	return res, nil
}

// retentionScanRows is how many rows one query of the time-retention walk
// reads.
var retentionScanRows = 1000 // a variable for tests

// firstUnexpired returns the base offset of the first row, in offset order,
// whose MaxTimestamp is not before expireBefore (hw if there is none): the
// rows before it are expired, Kafka stopping at the first segment kept. It
// walks from the log start, so it reads the expired rows and one more, not
// the partition's whole index.
func (s *Store) firstUnexpired(ctx context.Context, tp metastore.TopicPartition, expireBefore, hw int64) (int64, error) {
	from := int64(math.MinInt64)
	for {
		rows, err := s.pool.Query(ctx, `SELECT base_offset, max_ts FROM index_entries
			WHERE partition_id = `+partitionIDOf+` AND base_offset > $3
			ORDER BY base_offset LIMIT $4`, uuidArg(tp.Topic), tp.Partition, from, retentionScanRows)
		if err != nil {
			return 0, err
		}
		var n int
		var base, maxTS int64
		found := false
		_, err = pgx.ForEachRow(rows, []any{&base, &maxTS}, func() error {
			n++
			if !found && maxTS >= expireBefore {
				found, from = true, base
			}
			if !found {
				from = base
			}
			return nil
		})
		switch {
		case err != nil:
			return 0, err
		case found:
			return from, nil
		case n < retentionScanRows:
			return hw, nil
		}
	}
}

func valueOr(v *int64, def int64) int64 {
	if v == nil {
		return def
	}
	return *v
}

// lockedPartition is a partition row locked by lockPartition.
type lockedPartition struct {
	metastore.TopicPartition
	id           int32 // names it in index_entries (migration 0021)
	hw, logStart int64
}

// lockPartition locks a partition row and returns it.
func lockPartition(ctx context.Context, tx pgx.Tx, tp metastore.TopicPartition) (lockedPartition, error) {
	p := lockedPartition{TopicPartition: tp}
	err := tx.QueryRow(ctx, "SELECT id, high_watermark, log_start_offset FROM partitions WHERE topic_id = $1 AND partition = $2 FOR UPDATE",
		uuidArg(tp.Topic), tp.Partition).Scan(&p.id, &p.hw, &p.logStart)
	if errors.Is(err, pgx.ErrNoRows) {
		err = metastore.ErrUnknownTopic
	}
	return p, err
}

// moveLogStart sets a locked partition's log start offset and prunes what
// lies wholly below it (see metastore.RetentionStore); it reports the index
// rows deleted and their bytes.
func moveLogStart(ctx context.Context, tx pgx.Tx, p lockedPartition, logStart int64) (rows, bytes int64, err error) {
	if _, err := tx.Exec(ctx, "UPDATE partitions SET log_start_offset = $2 WHERE id = $1", p.id, logStart); err != nil {
		return 0, 0, err
	}
	// base_offset < $2 follows from last_offset < $2 and lets the primary
	// key bound the scan.
	if err := tx.QueryRow(ctx, `WITH d AS (
			DELETE FROM index_entries
			WHERE partition_id = $1 AND base_offset < $2 AND last_offset < $2
			RETURNING segment_id, length
		), c AS (
			INSERT INTO gc_candidates (segment_id) SELECT DISTINCT segment_id FROM d
		)
		SELECT count(*), coalesce(sum(length), 0) FROM d`, p.id, logStart).Scan(&rows, &bytes); err != nil {
		return 0, 0, err
	}
	for _, q := range []string{
		"DELETE FROM aborted_txns WHERE topic_id = $1 AND partition = $2 AND last_offset < $3",
		`DELETE FROM producer_state WHERE topic_id = $1 AND partition = $2
			AND cardinality(recent_base) > 0 AND recent_base[cardinality(recent_base)] < $3
			AND NOT EXISTS (SELECT 1 FROM ongoing_txns o WHERE o.topic_id = $1 AND o.partition = $2
				AND o.producer_id = producer_state.producer_id)`,
		"SELECT pg_notify('silt_logstart', encode(uuid_send($1), 'hex') || E'\\t' || $2::integer || E'\\t' || $3::bigint)",
	} {
		if _, err := tx.Exec(ctx, q, uuidArg(p.Topic), p.Partition, logStart); err != nil {
			return 0, 0, err
		}
	}
	return rows, bytes, nil
}

// DoomUnreferenced implements metastore.Store in one statement: all its
// parts see one snapshot. A segment's rows can only lie in the offset
// ranges its record lists (migration 0017), so those are what is checked. A commit of one of these segments cannot be in
// flight (they are committed, and a retried commit adds no rows), and rows
// deleted by a transaction this snapshot does not see still count as
// references, so a segment is doomed only if no committed row points at
// it. Candidates added meanwhile have ids not listed here and stay.
func (s *Store) DoomUnreferenced(ctx context.Context, limit int) (int, bool, error) {
	var doomed, examined int
	err := s.pool.QueryRow(ctx, `WITH c AS (
			SELECT id, segment_id FROM gc_candidates ORDER BY id LIMIT $1
		), d AS (
			DELETE FROM segments s
			WHERE s.id IN (SELECT segment_id FROM c) AND s.state = 'committed'
			  AND NOT EXISTS (
				SELECT 1 FROM unnest(s.chunk_partition_ids, s.chunk_starts, s.chunk_ends)
					AS r(partition_id, starts, ends)
				JOIN index_entries e ON e.partition_id = r.partition_id
					AND e.base_offset >= r.starts AND e.base_offset < r.ends
				WHERE e.segment_id = s.id)
			RETURNING s.key, s.size
		), i AS (
			INSERT INTO gc_objects (key, size) SELECT key, coalesce(size, 0) FROM d
			ON CONFLICT (key) DO NOTHING
		), x AS (
			DELETE FROM gc_candidates WHERE id IN (SELECT id FROM c)
		)
		SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM c)`, limit).Scan(&doomed, &examined)
	if err != nil {
		return 0, false, fmt.Errorf("doom unreferenced segments: %w", err)
	}
	return doomed, examined == limit, nil
}

// DoomedObjects implements metastore.Store.
func (s *Store) DoomedObjects(ctx context.Context, grace time.Duration, limit int) ([]metastore.DoomedObject, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, size, doomed_at FROM gc_objects
		WHERE doomed_at < now() - $1::bigint * interval '1 microsecond'
		ORDER BY doomed_at, key LIMIT $2`, grace.Microseconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("list doomed objects: %w", err)
	}
	objs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.DoomedObject, error) {
		var o metastore.DoomedObject
		err := r.Scan(&o.Key, &o.Size, &o.DoomedAt)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("list doomed objects: %w", err)
	}
	return objs, nil
}

// ForgetDoomed implements metastore.Store.
func (s *Store) ForgetDoomed(ctx context.Context, keys []string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM gc_objects WHERE key = ANY($1)", keys); err != nil {
		return fmt.Errorf("forget deleted objects: %w", err)
	}
	return nil
}

// Holdings implements metastore.Store.
func (s *Store) Holdings(ctx context.Context) (objects, bytes int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM segments) + (SELECT count(*) FROM gc_objects),
			(SELECT coalesce(sum(size), 0) FROM segments) + (SELECT coalesce(sum(size), 0) FROM gc_objects)`).Scan(&objects, &bytes)
	if err != nil {
		return 0, 0, fmt.Errorf("count held objects: %w", err)
	}
	return objects, bytes, nil
}

// GCBacklog implements metastore.Store.
func (s *Store) GCBacklog(ctx context.Context) (objects, bytes int64, err error) {
	if err := s.pool.QueryRow(ctx, "SELECT count(*), coalesce(sum(size), 0) FROM gc_objects").Scan(&objects, &bytes); err != nil {
		return 0, 0, fmt.Errorf("count doomed objects: %w", err)
	}
	return objects, bytes, nil
}
