package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/siltstream/silt/metastore"
)

// ReplaceIndex implements metastore.Store. The write connection and BEGIN
// IMMEDIATE serialize it with commits, retention, DeleteTopic and other
// swaps, so the rows it checks are the rows it deletes.
func (s *Store) ReplaceIndex(ctx context.Context, r metastore.Replacement) (bool, error) {
	if len(r.Old) == 0 {
		return false, fmt.Errorf("replace index of %x/%d with %s: no rows to replace", r.Topic[:], r.Partition, r.SegmentKey)
	}
	first, last := r.Old[0].BaseOffset, r.Old[len(r.Old)-1].LastOffset
	id := r.Topic[:]
	var replaced bool
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		var state string
		switch err := tx.QueryRowContext(ctx, `SELECT state FROM segments WHERE key = ?`, r.SegmentKey).Scan(&state); {
		case errors.Is(err, sql.ErrNoRows):
			return metastore.ErrUploadNotRecorded
		case err != nil:
			return err
		case state == "committed": // a retry of a swap that committed
			return tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM index_entries
				WHERE topic_id = ? AND partition = ? AND base_offset = ? AND segment_key = ?)`,
				id, r.Partition, first, r.SegmentKey).Scan(&replaced)
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+indexColumns+` FROM index_entries
			WHERE topic_id = ? AND partition = ? AND base_offset >= ? AND base_offset <= ?
			ORDER BY base_offset`, id, r.Partition, first, last)
		if err != nil {
			return err
		}
		n, same := 0, true
		for rows.Next() {
			e, err := scanIndexEntry(rows)
			if err != nil {
				rows.Close()
				return err
			}
			if n >= len(r.Old) || !sameRow(e, r.Old[n]) {
				same = false
			}
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if !same || n != len(r.Old) {
			return nil // changed meanwhile (or the topic is gone): the caller forgets its upload
		}
		const in = "topic_id = ? AND partition = ? AND base_offset >= ? AND base_offset <= ?"
		for _, q := range []string{
			"INSERT INTO gc_candidates (segment_key) SELECT DISTINCT segment_key FROM index_entries WHERE " + in,
			"DELETE FROM index_entries WHERE " + in,
		} {
			if _, err := tx.ExecContext(ctx, q, id, r.Partition, first, last); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO index_entries (`+indexColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, r.Partition, first, last, r.SegmentKey, r.Position, r.Length, r.BatchCount, r.MinTimestamp, r.MaxTimestamp); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE segments SET state = 'committed', size = ?, committed_at = ? WHERE key = ?`,
			r.Size, now(), r.SegmentKey); err != nil {
			return err
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
