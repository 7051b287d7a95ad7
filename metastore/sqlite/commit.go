package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/internal/flushcommit"
)

// CommitFlush implements metastore.Store. The write connection and BEGIN
// IMMEDIATE serialize flushes, so there is no lock order to keep.
func (s *Store) CommitFlush(ctx context.Context, f metastore.Flush) (metastore.FlushResult, error) {
	n := len(f.Chunks)
	seen := make(map[metastore.TopicPartition]bool, n)
	for i, c := range f.Chunks {
		if c.OffsetCount <= 0 {
			return metastore.FlushResult{}, fmt.Errorf("commit flush %s: chunk %d for partition %x/%d has offset count %d", f.SegmentKey, i, c.Topic[:], c.Partition, c.OffsetCount)
		}
		if seen[c.TopicPartition] {
			return metastore.FlushResult{}, fmt.Errorf("commit flush %s: partition %x/%d appears twice", f.SegmentKey, c.Topic[:], c.Partition)
		}
		seen[c.TopicPartition] = true
	}
	// Chunks without per-batch checks go to SQLite as one JSON array, so
	// they cost two statements however many partitions the flush touches.
	type row = [3]any // topic id (hex), partition, offset count
	var rows []row
	for _, c := range f.Chunks {
		if c.Batches == nil {
			rows = append(rows, row{hex.EncodeToString(c.Topic[:]), c.Partition, c.OffsetCount})
		}
	}
	chunkJSON, err := json.Marshal(rows)
	if err != nil {
		return metastore.FlushResult{}, fmt.Errorf("commit flush %s: %w", f.SegmentKey, err)
	}
	res := metastore.FlushResult{BaseOffsets: make([]int64, n), Batches: make([][]metastore.BatchResult, n)}
	var unknown []int
	err = inTx(ctx, s.write, func(tx *sql.Tx) error {
		// The upload record guards the commit; see metastore.Store.CommitFlush.
		var state string
		switch err := tx.QueryRowContext(ctx, `SELECT state FROM segments WHERE key = ?`, f.SegmentKey).Scan(&state); {
		case errors.Is(err, sql.ErrNoRows):
			return metastore.ErrUploadNotRecorded
		case err != nil:
			return err
		case state == "committed":
			return s.committedResults(ctx, f, &res)
		}
		hws := make(map[metastore.TopicPartition]int64, n)
		if len(rows) > 0 {
			q, err := tx.QueryContext(ctx, `UPDATE partitions AS p SET high_watermark = p.high_watermark + j.cnt
				FROM (SELECT unhex(value->>0) AS tid, value->>1 AS part, value->>2 AS cnt FROM json_each(?)) AS j
				WHERE p.topic_id = j.tid AND p.partition = j.part
				RETURNING topic_id, partition, high_watermark`, string(chunkJSON))
			if err != nil {
				return err
			}
			for q.Next() {
				var (
					raw []byte
					tp  metastore.TopicPartition
					hw  int64
				)
				if err := q.Scan(&raw, &tp.Partition, &hw); err != nil {
					q.Close()
					return err
				}
				if tp.Topic, err = topicID(raw); err != nil {
					q.Close()
					return err
				}
				hws[tp] = hw
			}
			q.Close()
			if err := q.Err(); err != nil {
				return err
			}
		}
		type indexRow = [10]any
		var irows []indexRow
		addRow := func(e metastore.IndexEntry) {
			irows = append(irows, indexRow{hex.EncodeToString(e.Topic[:]), e.Partition, e.BaseOffset, e.LastOffset,
				f.SegmentKey, e.Position, e.Length, e.BatchCount, e.MinTimestamp, e.MaxTimestamp})
		}
		for i, c := range f.Chunks {
			if c.Batches != nil {
				ok, err := s.commitBatches(ctx, tx, f.SegmentKey, c, &res, i, addRow)
				if err != nil {
					return err
				}
				if !ok {
					unknown = append(unknown, i)
				}
				continue
			}
			hw, ok := hws[c.TopicPartition]
			if !ok {
				unknown = append(unknown, i)
				continue
			}
			res.BaseOffsets[i] = hw - c.OffsetCount
			addRow(metastore.IndexEntry{TopicPartition: c.TopicPartition, BaseOffset: hw - c.OffsetCount, LastOffset: hw - 1,
				Position: c.Position, Length: c.Length, BatchCount: c.BatchCount, MinTimestamp: c.MinTimestamp, MaxTimestamp: c.MaxTimestamp})
		}
		if len(unknown) > 0 {
			return errUnknown // roll back
		}
		if len(irows) > 0 {
			indexJSON, err := json.Marshal(irows)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO index_entries (topic_id, partition, base_offset, last_offset,
					segment_key, position, length, batch_count, min_ts, max_ts)
				SELECT unhex(value->>0), value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8, value->>9
				FROM json_each(?)`, string(indexJSON)); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE segments SET state = 'committed', size = ?, committed_at = ? WHERE key = ?`,
			f.Size, now(), f.SegmentKey)
		return err
	})
	if errors.Is(err, errUnknown) {
		sort.Ints(unknown)
		uerr := &metastore.UnknownPartitionsError{}
		for _, i := range unknown {
			uerr.Partitions = append(uerr.Partitions, f.Chunks[i].TopicPartition)
		}
		return metastore.FlushResult{}, uerr
	}
	if err != nil {
		return metastore.FlushResult{}, fmt.Errorf("commit flush %s: %w", f.SegmentKey, err)
	}
	return res, nil
}

// commitBatches commits one chunk batch by batch, checking idempotent
// producers' sequences (flushcommit.ProducerState.Check). It reports false if
// the partition does not exist.
func (s *Store) commitBatches(ctx context.Context, tx *sql.Tx, key string, c metastore.Chunk, res *metastore.FlushResult, i int, addRow func(metastore.IndexEntry)) (bool, error) {
	tid := c.Topic[:]
	var hw int64
	switch err := tx.QueryRowContext(ctx, `SELECT high_watermark FROM partitions WHERE topic_id = ? AND partition = ?`, tid, c.Partition).Scan(&hw); {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, err
	}
	states := make(map[int64]*flushcommit.ProducerState)
	dirty := make(map[int64]bool)
	load := func(pid int64) (*flushcommit.ProducerState, error) {
		if st, ok := states[pid]; ok {
			return st, nil
		}
		var (
			epoch  int16
			recent string
		)
		err := tx.QueryRowContext(ctx, `SELECT epoch, recent FROM producer_state WHERE producer_id = ? AND topic_id = ? AND partition = ?`,
			pid, tid, c.Partition).Scan(&epoch, &recent)
		if errors.Is(err, sql.ErrNoRows) {
			states[pid] = nil
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		st := &flushcommit.ProducerState{Epoch: epoch}
		if err := json.Unmarshal([]byte(recent), &st.Recent); err != nil {
			return nil, fmt.Errorf("producer %d state: %w", pid, err)
		}
		states[pid] = st
		return st, nil
	}
	results := make([]metastore.BatchResult, len(c.Batches))
	res.BaseOffsets[i] = -1
	for j, b := range c.Batches {
		var st *flushcommit.ProducerState
		if b.ProducerID >= 0 {
			var err error
			if st, err = load(b.ProducerID); err != nil {
				return false, err
			}
		}
		verdict, dupBase := st.Check(b)
		if verdict != 0 {
			results[j] = flushcommit.ResultOf(verdict, dupBase)
			continue
		}
		if b.IsControl && b.ProducerID >= 0 {
			current, err := markerIsCurrent(ctx, tx, b)
			if err != nil {
				return false, err
			}
			if !current {
				results[j] = metastore.BatchResult{BaseOffset: -1, Err: metastore.ErrStaleMarker}
				continue
			}
		}
		results[j] = metastore.BatchResult{BaseOffset: hw}
		if res.BaseOffsets[i] < 0 {
			res.BaseOffsets[i] = hw
		}
		switch {
		case b.ProducerID >= 0 && b.IsControl:
			if next := st.Mark(b); next != st {
				states[b.ProducerID] = next
				dirty[b.ProducerID] = true
			}
		case b.ProducerID >= 0:
			states[b.ProducerID] = st.Accept(b, hw)
			dirty[b.ProducerID] = true
		}
		hw += b.OffsetCount
	}
	res.Batches[i] = results
	if _, err := tx.ExecContext(ctx, `UPDATE partitions SET high_watermark = ? WHERE topic_id = ? AND partition = ?`, hw, tid, c.Partition); err != nil {
		return false, err
	}
	for _, e := range metastore.IndexRuns(c.TopicPartition, key, c.Batches, results) {
		addRow(e)
	}
	for pid := range dirty {
		recent, err := json.Marshal(states[pid].Recent)
		if err != nil {
			return false, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO producer_state (producer_id, topic_id, partition, epoch, recent, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (producer_id, topic_id, partition) DO UPDATE SET epoch = excluded.epoch, recent = excluded.recent, updated_at = excluded.updated_at`,
			pid, tid, c.Partition, states[pid].Epoch, string(recent), now()); err != nil {
			return false, err
		}
	}
	if err := txnBookkeeping(ctx, tx, c.TopicPartition, flushcommit.TxnBookkeepingOf(c.Batches, results)); err != nil {
		return false, err
	}
	return true, nil
}

// committedResults answers a retried commit of a committed segment from
// its index rows.
func (s *Store) committedResults(ctx context.Context, f metastore.Flush, res *metastore.FlushResult) error {
	rows, err := s.IndexBySegment(ctx, f.SegmentKey)
	if err != nil {
		return err
	}
	byTP := make(map[metastore.TopicPartition][]metastore.IndexEntry)
	for _, r := range rows {
		byTP[r.TopicPartition] = append(byTP[r.TopicPartition], r)
	}
	var missing []metastore.TopicPartition
	for i, c := range f.Chunks {
		rs := byTP[c.TopicPartition]
		if c.Batches != nil {
			res.Batches[i], res.BaseOffsets[i] = flushcommit.RetriedResults(c.Batches, rs)
			continue
		}
		if len(rs) == 0 {
			missing = append(missing, c.TopicPartition)
			continue
		}
		res.BaseOffsets[i] = rs[0].BaseOffset
	}
	return metastore.MissingAfterCommit(ctx, s, f.SegmentKey, missing)
}

var errUnknown = errors.New("unknown partitions")
