package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/internal/claimrow"
	"github.com/siltstream/silt/metastore/internal/flushcommit"
	"github.com/siltstream/silt/metastore/internal/txnrow"
)

func (s *Store) txnWhere(ctx context.Context, what, where string, arg any) (metastore.Txn, bool, error) {
	t, err := txnrow.Scan(s.pool.QueryRow(ctx, `SELECT `+txnrow.Columns+` FROM transactions WHERE `+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, false, nil
	}
	if err != nil {
		return t, false, fmt.Errorf("read transaction %s: %w", what, err)
	}
	return t, true, nil
}

// Txn implements metastore.TxnStore.
func (s *Store) Txn(ctx context.Context, id string) (metastore.Txn, bool, error) {
	return s.txnWhere(ctx, id, `transactional_id = $1`, id)
}

// TxnByProducer implements metastore.TxnStore.
func (s *Store) TxnByProducer(ctx context.Context, pid int64) (metastore.Txn, bool, error) {
	return s.txnWhere(ctx, fmt.Sprint("of producer ", pid), `producer_id = $1 ORDER BY updated_at DESC LIMIT 1`, pid)
}

// Txns implements metastore.TxnStore.
func (s *Store) Txns(ctx context.Context) ([]metastore.Txn, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+txnrow.Columns+` FROM transactions ORDER BY transactional_id`)
	if err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.Txn, error) { return txnrow.Scan(r) })
	if err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	return out, nil
}

// PutTxn implements metastore.TxnStore.
func (s *Store) PutTxn(ctx context.Context, t metastore.Txn, prev *metastore.Txn) error {
	l, err := txnrow.EncodeLists(t)
	if err != nil {
		return err
	}
	var pl txnrow.Lists
	if prev != nil {
		if pl, err = txnrow.EncodeLists(*prev); err != nil {
			return err
		}
	}
	started := t.StartMillis()
	now := time.Now().UnixMilli()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkClaim(ctx, tx, claimrow.Txns, t.TransactionalID, t.CoordinatorEpoch); err != nil {
			return err
		}
		var tag pgconn.CommandTag
		var err error
		if prev == nil {
			tag, err = tx.Exec(ctx, `INSERT INTO transactions (`+txnrow.Columns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
				ON CONFLICT (transactional_id) DO NOTHING`,
				t.TransactionalID, t.ProducerID, t.Epoch, string(t.State), t.TimeoutMs, l.Partitions, l.Groups, l.Offsets, started, now)
		} else {
			tag, err = tx.Exec(ctx, `UPDATE transactions SET producer_id = $1, epoch = $2, state = $3, timeout_ms = $4,
					partitions = $5, groups = $6, offsets = $7, started_at = $8, updated_at = $9
				WHERE transactional_id = $10 AND producer_id = $11 AND epoch = $12 AND state = $13 AND started_at = $14
					AND partitions = $15 AND groups = $16 AND offsets = $17`,
				t.ProducerID, t.Epoch, string(t.State), t.TimeoutMs, l.Partitions, l.Groups, l.Offsets, started, now,
				t.TransactionalID, prev.ProducerID, prev.Epoch, string(prev.State), prev.StartMillis(),
				pl.Partitions, pl.Groups, pl.Offsets)
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return metastore.ErrTxnConflict
		}
		for _, g := range metastore.OffsetsCommittedBy(t, prev) {
			if err := commitOffsets(ctx, tx, g.Group, g.Offsets); err != nil {
				return fmt.Errorf("offsets of group %s: %w", g.Group, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put transaction %s: %w", t.TransactionalID, err)
	}
	return nil
}

// ClaimTxn implements metastore.TxnStore.
func (s *Store) ClaimTxn(ctx context.Context, id string) (int64, error) {
	return s.claim(ctx, claimrow.Txns, id)
}

// AbortedTxns implements metastore.TxnStore. One statement, so the log
// start and the list are of one snapshot: retention moves the one and
// prunes the other in one transaction.
func (s *Store) AbortedTxns(ctx context.Context, tp metastore.TopicPartition, from, to int64) ([]metastore.AbortedTxn, error) {
	rows, err := s.pool.Query(ctx, `SELECT p.log_start_offset, a.producer_id, a.first_offset, a.last_offset
		FROM partitions p LEFT JOIN aborted_txns a ON a.topic_id = p.topic_id AND a.partition = p.partition
			AND a.last_offset >= $3 AND a.first_offset < $4
		WHERE p.topic_id = $1 AND p.partition = $2
		ORDER BY a.first_offset, a.producer_id`, uuidArg(tp.Topic), tp.Partition, from, to)
	if err != nil {
		return nil, fmt.Errorf("aborted transactions of %x/%d: %w", tp.Topic[:], tp.Partition, err)
	}
	var (
		out      []metastore.AbortedTxn
		logStart int64
		pid      *int64
		first    *int64
		last     *int64
	)
	_, err = pgx.ForEachRow(rows, []any{&logStart, &pid, &first, &last}, func() error {
		if pid != nil {
			out = append(out, metastore.AbortedTxn{ProducerID: *pid, FirstOffset: *first, LastOffset: *last})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("aborted transactions of %x/%d: %w", tp.Topic[:], tp.Partition, err)
	}
	if from < logStart {
		return nil, fmt.Errorf("aborted transactions of %x/%d from %d: %w: below the log start offset %d",
			tp.Topic[:], tp.Partition, from, metastore.ErrOffsetOutOfRange, logStart)
	}
	return out, nil
}

// OngoingTxns implements metastore.TxnStore.
func (s *Store) OngoingTxns(ctx context.Context, tp metastore.TopicPartition) ([]metastore.OngoingTxn, error) {
	rows, err := s.pool.Query(ctx, `SELECT producer_id, first_offset FROM ongoing_txns
		WHERE topic_id = $1 AND partition = $2 ORDER BY first_offset, producer_id`, uuidArg(tp.Topic), tp.Partition)
	if err != nil {
		return nil, fmt.Errorf("ongoing transactions of %x/%d: %w", tp.Topic[:], tp.Partition, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.OngoingTxn, error) {
		var o metastore.OngoingTxn
		err := r.Scan(&o.ProducerID, &o.FirstOffset)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("ongoing transactions of %x/%d: %w", tp.Topic[:], tp.Partition, err)
	}
	return out, nil
}

// txnBookkeeping records a flush's transactional batches in the commit's
// transaction, after commit_flush assigned offsets and while it still holds
// the partition row locks (see metastore.TxnStore). The fence a marker
// leaves is set by commit_flush itself, so that it also holds for batches
// later in the same flush.
func txnBookkeeping(ctx context.Context, tx pgx.Tx, f metastore.Flush, res metastore.FlushResult) error {
	for i, c := range f.Chunks {
		if c.Batches == nil {
			continue
		}
		tid := uuidArg(c.Topic)
		for _, st := range flushcommit.TxnBookkeepingOf(c.Batches, res.Batches[i]) {
			if !st.Control {
				if _, err := tx.Exec(ctx, `INSERT INTO ongoing_txns (topic_id, partition, producer_id, first_offset)
					VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, tid, c.Partition, st.ProducerID, st.Offset); err != nil {
					return fmt.Errorf("record ongoing transaction: %w", err)
				}
				continue
			}
			var first int64
			err := tx.QueryRow(ctx, `DELETE FROM ongoing_txns WHERE topic_id = $1 AND partition = $2 AND producer_id = $3
				RETURNING first_offset`, tid, c.Partition, st.ProducerID).Scan(&first)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return fmt.Errorf("end ongoing transaction: %w", err)
			case st.Abort:
				if _, err := tx.Exec(ctx, `INSERT INTO aborted_txns (topic_id, partition, producer_id, first_offset, last_offset)
					VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, tid, c.Partition, st.ProducerID, first, st.Offset); err != nil {
					return fmt.Errorf("record aborted transaction: %w", err)
				}
			}
		}
	}
	return nil
}

// ExpireTxns implements metastore.TxnStore.
func (s *Store) ExpireTxns(ctx context.Context, olderThan time.Time) (int, error) {
	res, err := s.pool.Exec(ctx, `DELETE FROM transactions
		WHERE state IN ('Empty', 'CompleteCommit', 'CompleteAbort') AND updated_at < $1`, olderThan.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("expire transactions: %w", err)
	}
	return int(res.RowsAffected()), nil
}
