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
