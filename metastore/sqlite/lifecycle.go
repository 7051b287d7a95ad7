package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/siltstream/silt/metastore"
)

// AdvanceLogStart implements metastore.Store. The write connection
// serializes it with commits, so the high watermark read is current.
func (s *Store) AdvanceLogStart(ctx context.Context, tp metastore.TopicPartition, offset int64) (int64, error) {
	var logStart int64
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		hw, ls, err := partitionOffsets(ctx, tx, tp)
		if err != nil {
			return err
		}
		if offset == -1 {
			offset = hw
		}
		if offset < 0 || offset > hw {
			return fmt.Errorf("%w: %d, high watermark %d", metastore.ErrOffsetOutOfRange, offset, hw)
		}
		logStart = ls
		if offset <= ls {
			return nil
		}
		logStart = offset
		_, _, err = moveLogStart(ctx, tx, tp, offset)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("advance log start of %x/%d to %d: %w", tp.Topic[:], tp.Partition, offset, err)
	}
	return logStart, nil
}

// ApplyRetention implements metastore.Store; the rules are the postgres
// store's (see there). Reads go through the read pool first, so a
// partition with nothing to expire costs no write transaction.
func (s *Store) ApplyRetention(ctx context.Context, tp metastore.TopicPartition, p metastore.RetentionPolicy) (metastore.RetentionResult, error) {
	var res metastore.RetentionResult
	target, ls, err := retentionTarget(ctx, s.read, tp, p)
	if err != nil {
		return res, fmt.Errorf("apply retention to %x/%d: %w", tp.Topic[:], tp.Partition, err)
	}
	res.LogStartOffset = ls
	if target <= ls {
		return res, nil
	}
	err = inTx(ctx, s.write, func(tx *sql.Tx) error {
		_, ls, err := partitionOffsets(ctx, tx, tp)
		if err != nil {
			return err
		}
		res.LogStartOffset = ls
		if target <= ls {
			return nil
		}
		res.LogStartOffset, res.Moved = target, true
		res.ExpiredRows, res.ExpiredBytes, err = moveLogStart(ctx, tx, tp, target)
		return err
	})
	if err != nil {
		return metastore.RetentionResult{}, fmt.Errorf("apply retention to %x/%d: %w", tp.Topic[:], tp.Partition, err)
	}
	return res, nil
}

// retentionTarget returns where p says tp's log should start (never below
// its current start) and its current start.
func retentionTarget(ctx context.Context, q querier, tp metastore.TopicPartition, p metastore.RetentionPolicy) (target, logStart int64, err error) {
	hw, ls, err := partitionOffsets(ctx, q, tp)
	if err != nil {
		return 0, 0, err
	}
	target = ls
	if p.ExpireBefore != math.MinInt64 {
		// The first row, in offset order, not expired by time: the rows
		// before it all are (Kafka stops at the first segment kept). The
		// primary key walks from the log start, so this reads the expired
		// rows and one more, not the partition's whole index.
		var first sql.NullInt64
		if err := q.QueryRowContext(ctx, `SELECT base_offset FROM index_entries
			WHERE topic_id = ? AND partition = ? AND max_ts >= ?
			ORDER BY base_offset LIMIT 1`, tp.Topic[:], tp.Partition, p.ExpireBefore).Scan(&first); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, 0, err
		}
		target = max(target, nullOr(first, hw))
	}
	if p.MaxBytes >= 0 {
		var first sql.NullInt64
		if err := q.QueryRowContext(ctx, `SELECT min(base_offset) FROM (
				SELECT base_offset, sum(length) OVER (ORDER BY base_offset DESC) - length AS after
				FROM index_entries WHERE topic_id = ? AND partition = ?)
			WHERE after < ?`, tp.Topic[:], tp.Partition, p.MaxBytes).Scan(&first); err != nil {
			return 0, 0, err
		}
		target = max(target, nullOr(first, hw))
	}
	return min(target, hw), ls, nil
}

func nullOr(v sql.NullInt64, def int64) int64 {
	if !v.Valid {
		return def
	}
	return v.Int64
}

func partitionOffsets(ctx context.Context, q querier, tp metastore.TopicPartition) (hw, logStart int64, err error) {
	err = q.QueryRowContext(ctx, "SELECT high_watermark, log_start_offset FROM partitions WHERE topic_id = ? AND partition = ?",
		tp.Topic[:], tp.Partition).Scan(&hw, &logStart)
	if errors.Is(err, sql.ErrNoRows) {
		err = metastore.ErrUnknownTopic
	}
	return hw, logStart, err
}

// moveLogStart sets a partition's log start offset and prunes what lies
// wholly below it (see metastore.RetentionStore); it reports the index rows
// deleted and their bytes.
func moveLogStart(ctx context.Context, tx *sql.Tx, tp metastore.TopicPartition, logStart int64) (rows, bytes int64, err error) {
	id := tp.Topic[:]
	if _, err := tx.ExecContext(ctx, "UPDATE partitions SET log_start_offset = ? WHERE topic_id = ? AND partition = ?", logStart, id, tp.Partition); err != nil {
		return 0, 0, err
	}
	const below = "topic_id = ? AND partition = ? AND base_offset < ? AND last_offset < ?"
	if err := tx.QueryRowContext(ctx, "SELECT count(*), coalesce(sum(length), 0) FROM index_entries WHERE "+below,
		id, tp.Partition, logStart, logStart).Scan(&rows, &bytes); err != nil {
		return 0, 0, err
	}
	for _, q := range []string{
		"INSERT INTO gc_candidates (segment_key) SELECT DISTINCT segment_key FROM index_entries WHERE " + below,
		"DELETE FROM index_entries WHERE " + below,
	} {
		if _, err := tx.ExecContext(ctx, q, id, tp.Partition, logStart, logStart); err != nil {
			return 0, 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM aborted_txns WHERE topic_id = ? AND partition = ? AND last_offset < ?", id, tp.Partition, logStart); err != nil {
		return 0, 0, err
	}
	// recent is a JSON array, oldest first; an empty one is a marker's fence.
	// A producer with an open transaction here keeps its state.
	if _, err := tx.ExecContext(ctx, `DELETE FROM producer_state WHERE topic_id = ? AND partition = ?
		AND json_array_length(recent) > 0 AND json_extract(recent, '$[#-1].BaseOffset') < ?
		AND NOT EXISTS (SELECT 1 FROM ongoing_txns o WHERE o.topic_id = ? AND o.partition = ?
			AND o.producer_id = producer_state.producer_id)`, id, tp.Partition, logStart, id, tp.Partition); err != nil {
		return 0, 0, err
	}
	return rows, bytes, nil
}

// DoomUnreferenced implements metastore.Store. The write connection
// serializes it with commits and retention, so "no row references it" holds
// until the transaction commits.
func (s *Store) DoomUnreferenced(ctx context.Context, limit int) (int, bool, error) {
	var doomed, examined int
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		var maxID sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT count(*), max(id) FROM (SELECT id FROM gc_candidates ORDER BY id LIMIT ?)`, limit).Scan(&examined, &maxID); err != nil {
			return err
		}
		if !maxID.Valid {
			return nil
		}
		const doomable = `FROM segments s WHERE s.state = 'committed'
			AND s.key IN (SELECT segment_key FROM gc_candidates WHERE id <= ?)
			AND NOT EXISTS (SELECT 1 FROM index_entries e WHERE e.segment_key = s.key)`
		res, err := tx.ExecContext(ctx, `INSERT INTO gc_objects (key, size, doomed_at)
			SELECT s.key, coalesce(s.size, 0), ? `+doomable+` ON CONFLICT (key) DO NOTHING`, now(), maxID.Int64)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		doomed = int(n)
		if _, err := tx.ExecContext(ctx, `DELETE FROM segments WHERE key IN (SELECT key FROM gc_objects)`); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM gc_candidates WHERE id <= ?", maxID.Int64)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("doom unreferenced segments: %w", err)
	}
	return doomed, examined == limit, nil
}

// DoomedObjects implements metastore.Store.
func (s *Store) DoomedObjects(ctx context.Context, grace time.Duration, limit int) ([]metastore.DoomedObject, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT key, size, doomed_at FROM gc_objects
		WHERE doomed_at < ? ORDER BY doomed_at, key LIMIT ?`, now()-grace.Nanoseconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("list doomed objects: %w", err)
	}
	defer rows.Close()
	var objs []metastore.DoomedObject
	for rows.Next() {
		var (
			o  metastore.DoomedObject
			at int64
		)
		if err := rows.Scan(&o.Key, &o.Size, &at); err != nil {
			return nil, fmt.Errorf("list doomed objects: %w", err)
		}
		o.DoomedAt = time.Unix(0, at)
		objs = append(objs, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list doomed objects: %w", err)
	}
	return objs, nil
}

// ForgetDoomed implements metastore.Store.
func (s *Store) ForgetDoomed(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	q := "DELETE FROM gc_objects WHERE key IN (?" + strings.Repeat(", ?", len(keys)-1) + ")"
	if _, err := s.write.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("forget deleted objects: %w", err)
	}
	return nil
}

// GCBacklog implements metastore.Store.
func (s *Store) Holdings(ctx context.Context) (objects, bytes int64, err error) {
	err = s.read.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM segments) + (SELECT count(*) FROM gc_objects),
			(SELECT coalesce(sum(size), 0) FROM segments) + (SELECT coalesce(sum(size), 0) FROM gc_objects)`).Scan(&objects, &bytes)
	if err != nil {
		return 0, 0, fmt.Errorf("count held objects: %w", err)
	}
	return objects, bytes, nil
}

// GCBacklog implements metastore.Store.
func (s *Store) GCBacklog(ctx context.Context) (objects, bytes int64, err error) {
	if err := s.read.QueryRowContext(ctx, "SELECT count(*), coalesce(sum(size), 0) FROM gc_objects").Scan(&objects, &bytes); err != nil {
		return 0, 0, fmt.Errorf("count doomed objects: %w", err)
	}
	return objects, bytes, nil
}
