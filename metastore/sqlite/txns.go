package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/internal/claimrow"
	"github.com/siltstream/silt/metastore/internal/flushcommit"
	"github.com/siltstream/silt/metastore/internal/txnrow"
)

func (s *Store) txnWhere(ctx context.Context, what, where string, arg any) (metastore.Txn, bool, error) {
	t, err := txnrow.Scan(s.read.QueryRowContext(ctx, `SELECT `+txnrow.Columns+` FROM transactions WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return t, false, nil
	}
	if err != nil {
		return t, false, fmt.Errorf("read transaction %s: %w", what, err)
	}
	return t, true, nil
}

// Txn implements metastore.TxnStore.
func (s *Store) Txn(ctx context.Context, id string) (metastore.Txn, bool, error) {
	return s.txnWhere(ctx, id, `transactional_id = ?`, id)
}

// TxnByProducer implements metastore.TxnStore.
func (s *Store) TxnByProducer(ctx context.Context, pid int64) (metastore.Txn, bool, error) {
	return s.txnWhere(ctx, fmt.Sprint("of producer ", pid), `producer_id = ? ORDER BY updated_at DESC LIMIT 1`, pid)
}

// Txns implements metastore.TxnStore.
func (s *Store) Txns(ctx context.Context) ([]metastore.Txn, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+txnrow.Columns+` FROM transactions ORDER BY transactional_id`)
	if err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	defer rows.Close()
	var out []metastore.Txn
	for rows.Next() {
		t, err := txnrow.Scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list transactions: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
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
	err = inTx(ctx, s.write, func(tx *sql.Tx) error {
		if err := checkClaim(ctx, tx, claimrow.Txns, t.TransactionalID, t.CoordinatorEpoch); err != nil {
			return err
		}
		var res sql.Result
		var err error
		if prev == nil {
			res, err = tx.ExecContext(ctx, `INSERT INTO transactions (`+txnrow.Columns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (transactional_id) DO NOTHING`,
				t.TransactionalID, t.ProducerID, t.Epoch, string(t.State), t.TimeoutMs, l.Partitions, l.Groups, l.Offsets, started, time.Now().UnixMilli())
		} else {
			res, err = tx.ExecContext(ctx, `UPDATE transactions SET producer_id = ?, epoch = ?, state = ?, timeout_ms = ?,
					partitions = ?, groups = ?, offsets = ?, started_at = ?, updated_at = ?
				WHERE transactional_id = ? AND producer_id = ? AND epoch = ? AND state = ? AND started_at = ?
					AND partitions = ? AND groups = ? AND offsets = ?`,
				t.ProducerID, t.Epoch, string(t.State), t.TimeoutMs, l.Partitions, l.Groups, l.Offsets, started, time.Now().UnixMilli(),
				t.TransactionalID, prev.ProducerID, prev.Epoch, string(prev.State), prev.StartMillis(),
				pl.Partitions, pl.Groups, pl.Offsets)
		}
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return metastore.ErrTxnConflict
		}
		for _, g := range metastore.OffsetsCommittedBy(t, prev) {
			if err := writeOffsets(ctx, tx, g.Group, g.Offsets); err != nil {
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
	rows, err := s.read.QueryContext(ctx, `SELECT p.log_start_offset, a.producer_id, a.first_offset, a.last_offset
		FROM partitions p LEFT JOIN aborted_txns a ON a.topic_id = p.topic_id AND a.partition = p.partition
			AND a.last_offset >= ? AND a.first_offset < ?
		WHERE p.topic_id = ? AND p.partition = ?
		ORDER BY a.first_offset, a.producer_id`, from, to, tp.Topic[:], tp.Partition)
	if err != nil {
		return nil, fmt.Errorf("aborted transactions of %x/%d: %w", tp.Topic[:], tp.Partition, err)
	}
	defer rows.Close()
	var (
		out      []metastore.AbortedTxn
		logStart int64
	)
	for rows.Next() {
		var pid, first, last sql.NullInt64
		if err := rows.Scan(&logStart, &pid, &first, &last); err != nil {
			return nil, fmt.Errorf("aborted transactions of %x/%d: %w", tp.Topic[:], tp.Partition, err)
		}
		if pid.Valid {
			out = append(out, metastore.AbortedTxn{ProducerID: pid.Int64, FirstOffset: first.Int64, LastOffset: last.Int64})
		}
	}
	if err := rows.Err(); err != nil {
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
	rows, err := s.read.QueryContext(ctx, `SELECT producer_id, first_offset FROM ongoing_txns
		WHERE topic_id = ? AND partition = ? ORDER BY first_offset, producer_id`, tp.Topic[:], tp.Partition)
	if err != nil {
		return nil, fmt.Errorf("ongoing transactions of %x/%d: %w", tp.Topic[:], tp.Partition, err)
	}
	defer rows.Close()
	var out []metastore.OngoingTxn
	for rows.Next() {
		var o metastore.OngoingTxn
		if err := rows.Scan(&o.ProducerID, &o.FirstOffset); err != nil {
			return nil, fmt.Errorf("ongoing transactions of %x/%d: %w", tp.Topic[:], tp.Partition, err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// markerIsCurrent reports whether marker b ends a transaction that is
// ending now (see metastore.TxnStore and metastore.MarkerStates).
func markerIsCurrent(ctx context.Context, tx *sql.Tx, b metastore.ProducerBatch) (bool, error) {
	states, err := json.Marshal(metastore.MarkerStates(b.Abort))
	if err != nil {
		return false, err
	}
	var current bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM transactions
			WHERE producer_id = ? AND epoch = ? AND state IN (SELECT value FROM json_each(?)))`,
		b.ProducerID, b.ProducerEpoch, string(states)).Scan(&current); err != nil {
		return false, fmt.Errorf("check marker of producer %d: %w", b.ProducerID, err)
	}
	return current, nil
}

// txnBookkeeping records a chunk's transactional batches inside the commit
// (see metastore.TxnStore). The fence a marker leaves is the producer state
// commitBatches saved (flushcommit.ProducerState.Mark).
func txnBookkeeping(ctx context.Context, tx *sql.Tx, tp metastore.TopicPartition, steps []flushcommit.TxnBookkeeping) error {
	tid := tp.Topic[:]
	for _, st := range steps {
		if !st.Control {
			if _, err := tx.ExecContext(ctx, `INSERT INTO ongoing_txns (topic_id, partition, producer_id, first_offset)
				VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, tid, tp.Partition, st.ProducerID, st.Offset); err != nil {
				return fmt.Errorf("record ongoing transaction: %w", err)
			}
			continue
		}
		var first int64
		err := tx.QueryRowContext(ctx, `DELETE FROM ongoing_txns WHERE topic_id = ? AND partition = ? AND producer_id = ?
			RETURNING first_offset`, tid, tp.Partition, st.ProducerID).Scan(&first)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("end ongoing transaction: %w", err)
		case st.Abort:
			if _, err := tx.ExecContext(ctx, `INSERT INTO aborted_txns (topic_id, partition, producer_id, first_offset, last_offset)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, tid, tp.Partition, st.ProducerID, first, st.Offset); err != nil {
				return fmt.Errorf("record aborted transaction: %w", err)
			}
		}
	}
	return nil
}

// ExpireTxns implements metastore.TxnStore.
func (s *Store) ExpireTxns(ctx context.Context, olderThan time.Time) (int, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM transactions
		WHERE state IN ('Empty', 'CompleteCommit', 'CompleteAbort') AND updated_at < ?`, olderThan.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("expire transactions: %w", err)
	}
	return int(rowsAffected(res)), nil
}

func rowsAffected(r sql.Result) int64 {
	n, _ := r.RowsAffected()
	return n
}
