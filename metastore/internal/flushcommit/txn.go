package flushcommit

import "github.com/siltstream/silt/metastore"

// HasTxnBatches reports whether a flush holds transactional batches, which
// need the bookkeeping described at metastore.TxnStore.
func HasTxnBatches(f metastore.Flush) bool {
	for _, c := range f.Chunks {
		for _, b := range c.Batches {
			if b.IsTransactional {
				return true
			}
		}
	}
	return false
}

// TxnBookkeeping lists what CommitFlush records for one chunk's accepted
// transactional batches, in batch order (see metastore.TxnStore).
type TxnBookkeeping struct {
	ProducerID int64
	Epoch      int16
	Offset     int64 // the batch's base offset
	Control    bool
	Abort      bool
}

// TxnBookkeepingOf returns the bookkeeping steps for a chunk's batches and
// their verdicts.
func TxnBookkeepingOf(batches []metastore.ProducerBatch, results []metastore.BatchResult) []TxnBookkeeping {
	var out []TxnBookkeeping
	for i, b := range batches {
		r := results[i]
		if !b.IsTransactional || r.Err != nil || r.Duplicate {
			continue
		}
		out = append(out, TxnBookkeeping{ProducerID: b.ProducerID, Epoch: b.ProducerEpoch, Offset: r.BaseOffset, Control: b.IsControl, Abort: b.Abort})
	}
	return out
}
