package flushcommit

import "github.com/siltstream/silt/metastore"

// Verdict codes shared by the stores' SQL and Go.
const (
	verdictAccepted  = 0
	verdictFenced    = 1
	verdictDuplicate = 2
	verdictOutOfSeq  = 3
	verdictStale     = 4
)

// ResultOf turns a store's verdict code into a BatchResult.
func ResultOf(verdict int32, base int64) metastore.BatchResult {
	switch verdict {
	case verdictAccepted:
		return metastore.BatchResult{BaseOffset: base}
	case verdictDuplicate:
		return metastore.BatchResult{BaseOffset: base, Duplicate: true}
	case verdictFenced:
		return metastore.BatchResult{BaseOffset: -1, Err: metastore.ErrProducerFenced}
	case verdictStale:
		return metastore.BatchResult{BaseOffset: -1, Err: metastore.ErrStaleMarker}
	default:
		return metastore.BatchResult{BaseOffset: -1, Err: metastore.ErrOutOfOrderSequence}
	}
}

// ProducerState is what a store remembers of one producer on one partition.
type ProducerState struct {
	Epoch  int16
	Recent []RecentBatch // oldest first, at most metastore.ProducerStateWindow
}

// RecentBatch is one remembered batch.
type RecentBatch struct {
	FirstSeq, LastSeq int32
	BaseOffset        int64
}

// Check decides a batch against the state (nil: none known). It returns
// the verdict code and, for duplicates, the original base offset. Stores
// without SQL procedures (sqlite) call it; the postgres function implements
// the same rules.
func (st *ProducerState) Check(b metastore.ProducerBatch) (verdict int32, dupBase int64) {
	if b.ProducerID < 0 || st == nil || b.IsControl {
		// Not idempotent, or a producer we hold no state for (new, or
		// expired): accept, as Kafka does.
		return verdictAccepted, -1
	}
	switch {
	case b.ProducerEpoch < st.Epoch:
		return verdictFenced, -1
	case b.ProducerEpoch > st.Epoch:
		if b.BaseSequence != 0 {
			return verdictOutOfSeq, -1
		}
		return verdictAccepted, -1
	}
	for _, r := range st.Recent {
		if r.FirstSeq == b.BaseSequence && r.LastSeq == b.LastSequence() {
			return verdictDuplicate, r.BaseOffset
		}
	}
	if n := len(st.Recent); n > 0 && b.BaseSequence != int32((int64(st.Recent[n-1].LastSeq)+1)%(1<<31)) {
		return verdictOutOfSeq, -1
	}
	return verdictAccepted, -1
}

// Accept records an accepted batch at base in the state and returns it.
func (st *ProducerState) Accept(b metastore.ProducerBatch, base int64) *ProducerState {
	if st == nil || b.ProducerEpoch != st.Epoch {
		st = &ProducerState{Epoch: b.ProducerEpoch}
	}
	st.Recent = append(st.Recent, RecentBatch{FirstSeq: b.BaseSequence, LastSeq: b.LastSequence(), BaseOffset: base})
	if len(st.Recent) > metastore.ProducerStateWindow {
		st.Recent = st.Recent[len(st.Recent)-metastore.ProducerStateWindow:]
	}
	return st
}

// RetriedResults rebuilds per-batch results of an already committed chunk
// from its index rows (see metastore.IndexRuns): batches inside a row get
// their offsets; the others metastore.ErrVerdictUnknown.
func RetriedResults(batches []metastore.ProducerBatch, rows []metastore.IndexEntry) ([]metastore.BatchResult, int64) {
	out := make([]metastore.BatchResult, len(batches))
	first := int64(-1)
	for i, b := range batches {
		out[i] = metastore.BatchResult{BaseOffset: -1, Err: metastore.ErrVerdictUnknown}
		for _, r := range rows {
			if b.Position < r.Position || b.Position >= r.Position+r.Length {
				continue
			}
			base := r.BaseOffset
			for _, p := range batches[:i] {
				if p.Position >= r.Position && p.Position < b.Position {
					base += p.OffsetCount
				}
			}
			out[i] = metastore.BatchResult{BaseOffset: base}
			if first < 0 {
				first = base
			}
			break
		}
	}
	return out, first
}

// Mark records an accepted transaction marker (a control batch) of b's
// producer and returns the state. A marker leaves a fence: the producer's
// epoch on the partition becomes at least the marker's, even where the
// producer has no state yet, so a batch of an older epoch that commits
// later (a zombie that waited in a buffer while its transaction was
// aborted with a bumped epoch) is refused by Check. A marker of a newer
// epoch forgets the older epoch's batches; one of the same or an older
// epoch changes nothing. The postgres function implements the same rule.
func (st *ProducerState) Mark(b metastore.ProducerBatch) *ProducerState {
	if st == nil || st.Epoch < b.ProducerEpoch {
		return &ProducerState{Epoch: b.ProducerEpoch, Recent: []RecentBatch{}}
	}
	return st
}
