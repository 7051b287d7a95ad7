package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/siltstream/silt/metastore"
)

// ReplaceIndex implements metastore.Store. It locks the new segment's
// record, then the partition row, the order commit_flush takes them in, so
// the two never deadlock; the partition lock also serializes it with
// retention, DeleteRecords and other compactors of the partition, so the
// rows it checks are the rows it deletes. DeleteTopic deletes the partition
// row, so a swap after it finds no partition and changes nothing.
//
// The new row's run_max_ts (migration 0017) is the last old row's: the
// largest max_ts up to the end of the range, which is also the new row's
// own max_ts or more, so the column still never decreases in offset order.
func (s *Store) ReplaceIndex(ctx context.Context, r metastore.Replacement) (bool, error) {
	if len(r.Old) == 0 {
		return false, fmt.Errorf("replace index of %x/%d with %s: no rows to replace", r.Topic[:], r.Partition, r.SegmentKey)
	}
	first, last := r.Old[0].BaseOffset, r.Old[len(r.Old)-1].LastOffset
	id := uuidArg(r.Topic)
	var replaced bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			seg   int64
			state string
		)
		err := tx.QueryRow(ctx, "SELECT id, state FROM segments WHERE key = $1 FOR UPDATE", r.SegmentKey).Scan(&seg, &state)
		if errors.Is(err, pgx.ErrNoRows) {
			return metastore.ErrUploadNotRecorded
		}
		if err != nil {
			return err
		}
		if state == "committed" { // a retry of a swap that committed
			return tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM index_entries
				WHERE partition_id = `+partitionIDOf+` AND base_offset = $3 AND segment_id = $4)`,
				id, r.Partition, first, seg).Scan(&replaced)
		}
		p, err := lockPartition(ctx, tx, r.TopicPartition)
		if errors.Is(err, metastore.ErrUnknownTopic) {
			return nil // deleted: nothing to replace
		} else if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT e.base_offset, e.last_offset, s.key, e.position, e.length, e.run_max_ts
			FROM index_entries e JOIN segments s ON s.id = e.segment_id
			WHERE e.partition_id = $1 AND e.base_offset >= $2 AND e.base_offset <= $3
			ORDER BY e.base_offset`, p.id, first, last)
		if err != nil {
			return err
		}
		var (
			n      int
			same   = true
			runMax int64
		)
		var e metastore.IndexEntry
		_, err = pgx.ForEachRow(rows, []any{&e.BaseOffset, &e.LastOffset, &e.SegmentKey, &e.Position, &e.Length, &runMax}, func() error {
			if n >= len(r.Old) || !sameRow(e, r.Old[n]) {
				same = false
			}
			n++
			return nil
		})
		if err != nil {
			return err
		}
		if !same || n != len(r.Old) {
			return nil // changed meanwhile: the caller forgets its upload
		}
		if _, err := tx.Exec(ctx, `WITH d AS (
				DELETE FROM index_entries
				WHERE partition_id = $1 AND base_offset >= $2 AND base_offset <= $3
				RETURNING segment_id
			)
			INSERT INTO gc_candidates (segment_id) SELECT DISTINCT segment_id FROM d`,
			p.id, first, last); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO index_entries (partition_id, batch_count, base_offset, last_offset,
				segment_id, position, length, min_ts, max_ts, run_max_ts)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			p.id, r.BatchCount, first, last, seg, r.Position, r.Length, r.MinTimestamp, r.MaxTimestamp,
			max(runMax, r.MaxTimestamp)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE segments
			SET state = 'committed', size = $2, committed_at = now(),
				chunk_partition_ids = $3, chunk_starts = $4, chunk_ends = $5
			WHERE id = $1`, seg, r.Size, []int32{p.id}, []int64{first}, []int64{last + 1}); err != nil {
			return err
		}
		if r.Removes {
			if _, err := tx.Exec(ctx, "SELECT pg_notify('silt_replaced', encode(uuid_send($1), 'hex') || E'\\t' || $2::integer)",
				id, r.Partition); err != nil {
				return err
			}
		}
		replaced = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("replace index of %x/%d [%d, %d] with %s: %w", r.Topic[:], r.Partition, first, last, r.SegmentKey, err)
	}
	return replaced, nil
}

// sameRow reports whether a stored row is the one a compactor read.
func sameRow(got, want metastore.IndexEntry) bool {
	return got.BaseOffset == want.BaseOffset && got.LastOffset == want.LastOffset && got.SegmentKey == want.SegmentKey &&
		got.Position == want.Position && got.Length == want.Length
}
