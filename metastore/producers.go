package metastore

import "errors"

// ProducerBatch describes one record batch of a chunk, for chunks that hold
// batches from idempotent producers. CommitFlush checks each idempotent
// batch's sequence numbers in the same transaction that assigns offsets, so
// the check holds even when two agents receive batches for one partition.
type ProducerBatch struct {
	Position     int64 // absolute byte offset in the segment object
	Length       int64
	OffsetCount  int64
	MinTimestamp int64
	MaxTimestamp int64

	ProducerID    int64 // -1: not idempotent, always accepted
	ProducerEpoch int16
	BaseSequence  int32

	// IsTransactional: the batch belongs to a transaction (see TxnStore).
	IsTransactional bool
	// IsControl: a transaction marker written by the coordinator; its
	// sequence is not checked. Abort tells an abort marker from a commit.
	IsControl bool
	Abort     bool
}

// LastSequence is the sequence number of the batch's last record. Sequences
// wrap from MaxInt32 to 0, as in Kafka.
func (b ProducerBatch) LastSequence() int32 {
	return int32((int64(b.BaseSequence) + b.OffsetCount - 1) % (1 << 31))
}

// BatchResult is CommitFlush's verdict on one ProducerBatch.
type BatchResult struct {
	// BaseOffset is the batch's first offset: newly assigned, or for a
	// duplicate the offset it was given the first time. -1 if rejected.
	BaseOffset int64
	// Duplicate: the batch repeats one of the producer's last
	// ProducerStateWindow batches and was not appended again.
	Duplicate bool
	// Err is nil, ErrOutOfOrderSequence or ErrProducerFenced; for a
	// marker, nil or ErrStaleMarker.
	Err error
}

// ProducerStateWindow is how many recent batches per producer and partition
// are remembered to recognise retries, as in Kafka.
const ProducerStateWindow = 5

var (
	// ErrOutOfOrderSequence: the batch's first sequence does not follow the
	// producer's last one (a gap), or a new epoch does not start at 0.
	ErrOutOfOrderSequence = errors.New("out of order sequence number")
	// ErrProducerFenced: the batch's producer epoch is older than the
	// partition has seen from that producer id.
	ErrProducerFenced = errors.New("producer epoch is stale (fenced)")
	// ErrStaleMarker: a transaction marker for a transaction that is not
	// ending (see MarkerStates); it was not appended and changed nothing.
	ErrStaleMarker = errors.New("transaction marker for a transaction that is not ending (stale coordinator)")
)

// Verdict codes shared by the stores' SQL and Go.
const (
	verdictAccepted  = 0
	verdictFenced    = 1
	verdictDuplicate = 2
	verdictOutOfSeq  = 3
	verdictStale     = 4
)

// BatchResultOf turns a store's verdict code into a BatchResult.
func BatchResultOf(verdict int32, base int64) BatchResult {
	switch verdict {
	case verdictAccepted:
		return BatchResult{BaseOffset: base}
	case verdictDuplicate:
		return BatchResult{BaseOffset: base, Duplicate: true}
	case verdictFenced:
		return BatchResult{BaseOffset: -1, Err: ErrProducerFenced}
	case verdictStale:
		return BatchResult{BaseOffset: -1, Err: ErrStaleMarker}
	default:
		return BatchResult{BaseOffset: -1, Err: ErrOutOfOrderSequence}
	}
}

// ProducerState is what a store remembers of one producer on one partition.
type ProducerState struct {
	Epoch  int16
	Recent []RecentBatch // oldest first, at most ProducerStateWindow
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
func (st *ProducerState) Check(b ProducerBatch) (verdict int32, dupBase int64) {
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
func (st *ProducerState) Accept(b ProducerBatch, base int64) *ProducerState {
	if st == nil || b.ProducerEpoch != st.Epoch {
		st = &ProducerState{Epoch: b.ProducerEpoch}
	}
	st.Recent = append(st.Recent, RecentBatch{FirstSeq: b.BaseSequence, LastSeq: b.LastSequence(), BaseOffset: base})
	if len(st.Recent) > ProducerStateWindow {
		st.Recent = st.Recent[len(st.Recent)-ProducerStateWindow:]
	}
	return st
}

// Mark records an accepted transaction marker (a control batch) of b's
// producer and returns the state. A marker leaves a fence: the producer's
// epoch on the partition becomes at least the marker's, even where the
// producer has no state yet, so a batch of an older epoch that commits
// later (a zombie that waited in a buffer while its transaction was
// aborted with a bumped epoch) is refused by Check. A marker of a newer
// epoch forgets the older epoch's batches; one of the same or an older
// epoch changes nothing. The postgres function implements the same rule.
func (st *ProducerState) Mark(b ProducerBatch) *ProducerState {
	if st == nil || st.Epoch < b.ProducerEpoch {
		return &ProducerState{Epoch: b.ProducerEpoch, Recent: []RecentBatch{}}
	}
	return st
}

// IndexRuns turns a chunk's per-batch verdicts into its index rows: one row
// per maximal run of accepted batches that are contiguous in the object.
// Duplicates and rejected batches stay in the object but are never indexed,
// so readers never see them. Both stores insert exactly these rows, and the
// agent uses them to keep its own index cache.
func IndexRuns(tp TopicPartition, segmentKey string, batches []ProducerBatch, results []BatchResult) []IndexEntry {
	var out []IndexEntry
	open := false
	for i, b := range batches {
		r := results[i]
		if r.Err != nil || r.Duplicate {
			open = false
			continue
		}
		if open {
			e := &out[len(out)-1]
			if e.Position+e.Length == b.Position && e.LastOffset+1 == r.BaseOffset {
				e.Length += b.Length
				e.LastOffset += b.OffsetCount
				e.BatchCount++
				e.MinTimestamp = min(e.MinTimestamp, b.MinTimestamp)
				e.MaxTimestamp = max(e.MaxTimestamp, b.MaxTimestamp)
				continue
			}
		}
		out = append(out, IndexEntry{
			TopicPartition: tp, BaseOffset: r.BaseOffset, LastOffset: r.BaseOffset + b.OffsetCount - 1,
			SegmentKey: segmentKey, Position: b.Position, Length: b.Length, BatchCount: 1,
			MinTimestamp: b.MinTimestamp, MaxTimestamp: b.MaxTimestamp,
		})
		open = true
	}
	return out
}

// ErrVerdictUnknown answers a batch of a retried commit (the segment was
// already committed, e.g. the first attempt's reply was lost) that is not in
// the index: it was a duplicate or rejected the first time. The producer
// should retry it; the sequence check then answers it properly.
var ErrVerdictUnknown = errors.New("batch outcome unknown after a retried commit; retry")

// RetriedResults rebuilds per-batch results of an already committed chunk
// from its index rows (see IndexRuns): batches inside a row get their
// offsets; the others ErrVerdictUnknown.
func RetriedResults(batches []ProducerBatch, rows []IndexEntry) ([]BatchResult, int64) {
	out := make([]BatchResult, len(batches))
	first := int64(-1)
	for i, b := range batches {
		out[i] = BatchResult{BaseOffset: -1, Err: ErrVerdictUnknown}
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
			out[i] = BatchResult{BaseOffset: base}
			if first < 0 {
				first = base
			}
			break
		}
	}
	return out, first
}
