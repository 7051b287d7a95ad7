package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/internal/flushcommit"
)

// CommitFlush implements metastore.Store with one call of the commit_flush
// SQL function: one round trip whatever the number of partitions.
func (s *Store) CommitFlush(ctx context.Context, f metastore.Flush) (metastore.FlushResult, error) {
	n := len(f.Chunks)
	var (
		topicIDs   = make([]pgtype.UUID, n)
		partitions = make([]int32, n)
		positions  = make([]int64, n)
		lengths    = make([]int64, n)
		counts     = make([]int64, n)
		batches    = make([]int32, n)
		minTS      = make([]int64, n)
		maxTS      = make([]int64, n)
		b          batchArrays
	)
	for i, c := range f.Chunks {
		if c.OffsetCount <= 0 {
			return metastore.FlushResult{}, fmt.Errorf("commit flush %s: chunk %d for partition %x/%d has offset count %d", f.SegmentKey, i, c.Topic[:], c.Partition, c.OffsetCount)
		}
		topicIDs[i] = uuidArg(c.Topic)
		partitions[i] = c.Partition
		positions[i] = c.Position
		lengths[i] = c.Length
		counts[i] = c.OffsetCount
		batches[i] = c.BatchCount
		minTS[i] = c.MinTimestamp
		maxTS[i] = c.MaxTimestamp
		for _, pb := range c.Batches {
			b.add(int32(i+1), pb)
		}
	}
	var (
		bases    []int64
		missing  []int32
		verdicts []int32
		bBases   []int64
		already  bool
	)
	// Transactional batches need bookkeeping after commit_flush in the same
	// transaction; everything else commits in one round trip.
	var q interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	} = s.pool
	var tx pgx.Tx
	if flushcommit.HasTxnBatches(f) {
		var err error
		if tx, err = s.pool.Begin(ctx); err != nil {
			return metastore.FlushResult{}, fmt.Errorf("commit flush %s: %w", f.SegmentKey, err)
		}
		defer tx.Rollback(ctx)
		q = tx
	}
	err := q.QueryRow(ctx, `SELECT base_offsets, missing, b_verdicts, b_bases, already
		FROM commit_flush($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`,
		f.SegmentKey, f.AgentID, f.Size, topicIDs, partitions, positions, lengths, counts, batches, minTS, maxTS,
		b.chunk, b.pos, b.len, b.cnt, b.minTS, b.maxTS, b.pid, b.epoch, b.seq, b.control, b.abort,
	).Scan(&bases, &missing, &verdicts, &bBases, &already)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "P0002" {
		return metastore.FlushResult{}, fmt.Errorf("commit flush %s: %w", f.SegmentKey, metastore.ErrUploadNotRecorded)
	}
	if err != nil {
		return metastore.FlushResult{}, permanentIfRejected(fmt.Errorf("commit flush %s: %w", f.SegmentKey, err))
	}
	if already {
		return s.committedResults(ctx, f)
	}
	if len(missing) > 0 {
		uerr := &metastore.UnknownPartitionsError{}
		for _, i := range missing {
			uerr.Partitions = append(uerr.Partitions, f.Chunks[i-1].TopicPartition)
		}
		return metastore.FlushResult{}, uerr
	}
	if len(bases) != n || len(verdicts) != len(b.chunk) || len(bBases) != len(b.chunk) {
		return metastore.FlushResult{}, fmt.Errorf("commit flush %s: got %d base offsets for %d chunks, %d verdicts for %d batches",
			f.SegmentKey, len(bases), n, len(verdicts), len(b.chunk))
	}
	res := metastore.FlushResult{BaseOffsets: bases, Batches: make([][]metastore.BatchResult, n)}
	k := 0
	for i, c := range f.Chunks {
		if c.Batches == nil {
			continue
		}
		rs := make([]metastore.BatchResult, len(c.Batches))
		for j := range c.Batches {
			rs[j] = flushcommit.ResultOf(verdicts[k], bBases[k])
			k++
		}
		res.Batches[i] = rs
	}
	if tx != nil {
		if err := txnBookkeeping(ctx, tx, f, res); err != nil {
			return metastore.FlushResult{}, fmt.Errorf("commit flush %s: %w", f.SegmentKey, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return metastore.FlushResult{}, fmt.Errorf("commit flush %s: %w", f.SegmentKey, err)
		}
	}
	return res, nil
}

// batchArrays are the p_b_* arguments of commit_flush.
type batchArrays struct {
	chunk, seq, epoch                []int32
	pos, len, cnt, minTS, maxTS, pid []int64
	control, abort                   []bool
}

func (b *batchArrays) add(chunk int32, pb metastore.ProducerBatch) {
	b.chunk = append(b.chunk, chunk)
	b.pos = append(b.pos, pb.Position)
	b.len = append(b.len, pb.Length)
	b.cnt = append(b.cnt, pb.OffsetCount)
	b.minTS = append(b.minTS, pb.MinTimestamp)
	b.maxTS = append(b.maxTS, pb.MaxTimestamp)
	b.pid = append(b.pid, pb.ProducerID)
	b.control = append(b.control, pb.IsControl) // no sequence to check; leaves a fence
	b.abort = append(b.abort, pb.Abort)
	b.epoch = append(b.epoch, int32(pb.ProducerEpoch))
	b.seq = append(b.seq, pb.BaseSequence)
}

// committedResults answers a retried commit of a committed segment from
// its index rows.
func (s *Store) committedResults(ctx context.Context, f metastore.Flush) (metastore.FlushResult, error) {
	rows, err := s.IndexBySegment(ctx, f.SegmentKey)
	if err != nil {
		return metastore.FlushResult{}, err
	}
	byTP := make(map[metastore.TopicPartition][]metastore.IndexEntry)
	for _, r := range rows {
		byTP[r.TopicPartition] = append(byTP[r.TopicPartition], r)
	}
	res := metastore.FlushResult{BaseOffsets: make([]int64, len(f.Chunks)), Batches: make([][]metastore.BatchResult, len(f.Chunks))}
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
	if err := metastore.MissingAfterCommit(ctx, s, f.SegmentKey, missing); err != nil {
		return metastore.FlushResult{}, err
	}
	return res, nil
}

// permanentIfRejected marks an error no retry can mend as a
// *metastore.PermanentError: the server rejected the statement itself — a
// data exception (SQLSTATE class 22), an integrity violation (23), or a
// syntax error or undefined object (42: a schema that does not match this
// build). Connection failures, serialization failures, deadlocks and
// shutdowns stay transient.
func permanentIfRejected(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch pgErr.Code[:2] {
		case "22", "23", "42":
			return &metastore.PermanentError{Err: err}
		}
	}
	return err
}
