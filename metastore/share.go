package metastore

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// ShareStore keeps the state of share groups' partitions (KIP-932): per
// (group, topic, partition) the share-partition start offset (SPSO: every
// record below it is done with) and the state of each in-flight record
// above it. Any agent serves share fetches for any partition, so the
// store, not an agent's memory, decides which member holds which record.
//
// Contract, in addition to Store's:
//   - Every method that changes a share partition is one transaction on
//     it, serialized with every other change to the same share partition
//     (by any process): of two AcquireShareRecords racing for the same
//     records, one gets them and the other sees them acquired. No record
//     is ever held by two members at once.
//   - Every change first expires acquisition locks that lapsed by the
//     request's NowMs (a record goes back to AVAILABLE, or to ARCHIVED
//     once it was delivered DeliveryLimit times), and afterwards moves the
//     SPSO past the records at its front that are ACKNOWLEDGED or
//     ARCHIVED, forgetting them.
//   - The transitions themselves are the pure functions of this file
//     (SharePartitionState.Acquire, .Acknowledge, .ReleaseMember), so
//     both stores behave alike; a store only loads, locks and saves.
type ShareStore interface {
	// AcquireShareRecords acquires for req.Member up to req.MaxRecords
	// acquirable records among offsets [req.From, req.To), creating the
	// share partition at req.InitialOffset if it does not exist.
	AcquireShareRecords(ctx context.Context, key SharePartitionKey, req ShareAcquire) ([]AcquiredRange, SharePartitionState, error)
	// AcknowledgeShareRecords applies a member's acknowledgements. It
	// returns the first error of the batch that failed, per batch in
	// order (nil for those applied): a batch is applied whole or not at
	// all. A share partition that does not exist gives
	// ErrInvalidRecordState for every batch.
	AcknowledgeShareRecords(ctx context.Context, key SharePartitionKey, req ShareAcknowledge) ([]error, error)
	// ReleaseShareRecords returns every record member holds in the
	// group's share partitions to AVAILABLE (a closed share session, a
	// member that left).
	ReleaseShareRecords(ctx context.Context, group, member string, nowMs int64, deliveryLimit int16) error
	// SharePartitions lists a group's share partitions as stored,
	// ordered by topic id and partition.
	SharePartitions(ctx context.Context, group string) ([]SharePartitionState, error)
	// SetShareStartOffset sets a share partition's SPSO (creating it if
	// needed) and forgets its in-flight records: AlterShareGroupOffsets.
	SetShareStartOffset(ctx context.Context, key SharePartitionKey, offset int64) error
	// DeleteSharePartitions forgets share partitions (all of the group's
	// with keys nil): DeleteShareGroupOffsets, DeleteGroups.
	DeleteSharePartitions(ctx context.Context, group string, keys []SharePartitionKey) error
}

// GroupConfigStore keeps group configs (Kafka's GROUP config resource),
// which exist whether or not the group does.
type GroupConfigStore interface {
	// GroupConfig returns the configs set on a group id (none: an empty
	// map).
	GroupConfig(ctx context.Context, group string) (map[string]string, error)
	// SetGroupConfig replaces a group's configs with next if they are
	// still prev (compared as a whole); otherwise nothing changes and the
	// error wraps ErrConfigChanged.
	SetGroupConfig(ctx context.Context, group string, next, prev map[string]string) error
}

// ErrInvalidRecordState: an acknowledgement of a record the member does
// not hold acquired (Kafka's INVALID_RECORD_STATE).
var ErrInvalidRecordState = errors.New("record is not acquired by this member")

// SharePartitionKey names one share partition.
type SharePartitionKey struct {
	Group     string
	Topic     TopicID
	Partition int32
}

// ShareRecordState is a record's state, with Kafka's numbering.
type ShareRecordState int8

const (
	ShareAvailable    ShareRecordState = 0
	ShareAcquired     ShareRecordState = 1
	ShareAcknowledged ShareRecordState = 2
	ShareArchived     ShareRecordState = 4
)

func (s ShareRecordState) String() string {
	switch s {
	case ShareAvailable:
		return "AVAILABLE"
	case ShareAcquired:
		return "ACQUIRED"
	case ShareAcknowledged:
		return "ACKNOWLEDGED"
	case ShareArchived:
		return "ARCHIVED"
	}
	return fmt.Sprintf("ShareRecordState(%d)", int8(s))
}

// ShareBatch is a run of consecutive in-flight offsets in one state.
type ShareBatch struct {
	First, Last   int64 // inclusive
	State         ShareRecordState
	DeliveryCount int16
	Member        string // the holder while ACQUIRED
	LockUntilMs   int64  // the acquisition lock's deadline while ACQUIRED
}

// SharePartitionState is one share partition as stored: Batches are in
// offset order, do not overlap, and all lie at or above StartOffset.
// Offsets past the last batch (the share-partition end offset, SPEO)
// were never delivered.
type SharePartitionState struct {
	Key         SharePartitionKey
	StartOffset int64
	Batches     []ShareBatch
}

// EndOffset is the share-partition end offset: the first offset never
// delivered.
func (st *SharePartitionState) EndOffset() int64 {
	if n := len(st.Batches); n > 0 {
		return st.Batches[n-1].Last + 1
	}
	return st.StartOffset
}

// NextAvailable is the first offset at or above the SPSO that may be
// acquired (as of the state's last change): the first AVAILABLE one, or
// the end offset.
func (st *SharePartitionState) NextAvailable() int64 {
	for _, b := range st.Batches {
		if b.State == ShareAvailable {
			return b.First
		}
	}
	return st.EndOffset()
}

// ShareAcquire is one acquisition request.
type ShareAcquire struct {
	Member string
	NowMs  int64
	// LockMs is the acquisition lock's duration
	// (group.share.record.lock.duration.ms).
	LockMs int64
	// MaxRecords bounds the records acquired; MaxInFlight bounds the
	// offsets past the SPSO that may be in flight
	// (group.share.partition.max.record.locks).
	MaxRecords, MaxInFlight int64
	// DeliveryLimit is group.share.delivery.count.limit.
	DeliveryLimit int16
	// From and To (exclusive) are the offsets the caller read records
	// for; only they are acquired.
	From, To int64
	// LogStart is the partition's log start offset: an SPSO below it
	// moves up to it (retention removed those records).
	LogStart int64
	// InitialOffset is the SPSO of a share partition created now
	// (share.auto.offset.reset: the log start or the high watermark).
	InitialOffset int64
}

// AcquiredRange is a run of offsets acquired at one delivery count.
type AcquiredRange struct {
	First, Last   int64
	DeliveryCount int16
}

// Acknowledgement types, with Kafka's numbering (ShareAcknowledge).
const (
	AckGap     int8 = 0
	AckAccept  int8 = 1
	AckRelease int8 = 2
	AckReject  int8 = 3
	AckRenew   int8 = 4
)

// ShareAckBatch acknowledges offsets First..Last (inclusive): one type
// for all, or one per offset.
type ShareAckBatch struct {
	First, Last int64
	Types       []int8
}

// ShareAcknowledge is one member's acknowledgements for one partition.
type ShareAcknowledge struct {
	Member        string
	NowMs         int64
	LockMs        int64 // for AckRenew
	DeliveryLimit int16
	Batches       []ShareAckBatch
}

// typeAt is the acknowledgement type of offset o of b.
func (b ShareAckBatch) typeAt(o int64) int8 {
	if len(b.Types) == 1 {
		return b.Types[0]
	}
	return b.Types[o-b.First]
}

// Validate checks an acknowledgement batch's shape: INVALID_REQUEST in
// Kafka.
func (b ShareAckBatch) Validate() error {
	switch {
	case b.First < 0 || b.Last < b.First:
		return fmt.Errorf("acknowledgement batch [%d, %d] is empty or negative", b.First, b.Last)
	case len(b.Types) != 1 && int64(len(b.Types)) != b.Last-b.First+1:
		return fmt.Errorf("acknowledgement batch [%d, %d] has %d types", b.First, b.Last, len(b.Types))
	}
	for _, t := range b.Types {
		if t < AckGap || t > AckRenew {
			return fmt.Errorf("acknowledgement type %d", t)
		}
	}
	return nil
}

// record is one offset's state, for the transitions below.
type record struct {
	state  ShareRecordState
	count  int16
	member string
	lock   int64
}

// expand lists st's in-flight records by offset from StartOffset to
// EndOffset; offsets between batches (none, when st is well formed) are
// AVAILABLE.
func (st *SharePartitionState) expand() []record {
	end := st.EndOffset()
	if end <= st.StartOffset {
		return nil
	}
	out := make([]record, end-st.StartOffset)
	for _, b := range st.Batches {
		for o := max(b.First, st.StartOffset); o <= b.Last; o++ {
			out[o-st.StartOffset] = record{b.State, b.DeliveryCount, b.Member, b.LockUntilMs}
		}
	}
	return out
}

// compact stores recs (from StartOffset) back as batches, first moving
// the SPSO past the finished records at the front.
func (st *SharePartitionState) compact(recs []record) {
	i := 0
	for i < len(recs) && (recs[i].state == ShareAcknowledged || recs[i].state == ShareArchived) {
		i++
	}
	st.StartOffset += int64(i)
	recs = recs[i:]
	st.Batches = st.Batches[:0]
	for j, r := range recs {
		o := st.StartOffset + int64(j)
		if r.state != ShareAcquired {
			r.member, r.lock = "", 0
		}
		if n := len(st.Batches); n > 0 {
			b := &st.Batches[n-1]
			if b.Last == o-1 && b.State == r.state && b.DeliveryCount == r.count && b.Member == r.member && b.LockUntilMs == r.lock {
				b.Last = o
				continue
			}
		}
		st.Batches = append(st.Batches, ShareBatch{First: o, Last: o, State: r.state, DeliveryCount: r.count, Member: r.member, LockUntilMs: r.lock})
	}
	if len(st.Batches) == 0 {
		st.Batches = nil
	}
}

// released is the state a record takes when its holder gives it up or
// its lock lapses.
func released(r record, limit int16) record {
	r.member, r.lock = "", 0
	r.state = ShareAvailable
	if r.count >= limit {
		r.state = ShareArchived
	}
	return r
}

// expire returns records whose acquisition lock lapsed by now.
func expire(recs []record, now int64, limit int16) {
	for i, r := range recs {
		if r.state == ShareAcquired && r.lock <= now {
			recs[i] = released(r, limit)
		}
	}
}

// moveStart moves the SPSO up to logStart, dropping what lies below.
func (st *SharePartitionState) moveStart(recs []record, logStart int64) []record {
	if logStart <= st.StartOffset {
		return recs
	}
	drop := min(logStart-st.StartOffset, int64(len(recs)))
	st.StartOffset = logStart
	return recs[drop:]
}

// Acquire acquires records for req.Member (see ShareStore).
func (st *SharePartitionState) Acquire(req ShareAcquire) []AcquiredRange {
	recs := st.expand()
	expire(recs, req.NowMs, req.DeliveryLimit)
	recs = st.moveStart(recs, req.LogStart)
	var out []AcquiredRange
	var n int64
	from := max(req.From, st.StartOffset)
	to := min(req.To, st.StartOffset+req.MaxInFlight)
	for o := from; o < to && n < req.MaxRecords; o++ {
		i := o - st.StartOffset
		for int64(len(recs)) <= i {
			recs = append(recs, record{}) // never delivered: AVAILABLE
		}
		r := recs[i]
		if r.state != ShareAvailable {
			continue
		}
		r.state, r.count, r.member, r.lock = ShareAcquired, r.count+1, req.Member, req.NowMs+req.LockMs
		recs[i] = r
		n++
		if k := len(out); k > 0 && out[k-1].Last == o-1 && out[k-1].DeliveryCount == r.count {
			out[k-1].Last = o
		} else {
			out = append(out, AcquiredRange{First: o, Last: o, DeliveryCount: r.count})
		}
	}
	st.compact(recs)
	return out
}

// Acknowledge applies req (see ShareStore): per batch nil, or
// ErrInvalidRecordState if some offset in it is not acquired by
// req.Member (then nothing of that batch is applied).
func (st *SharePartitionState) Acknowledge(req ShareAcknowledge) []error {
	recs := st.expand()
	expire(recs, req.NowMs, req.DeliveryLimit)
	errs := make([]error, len(req.Batches))
	for bi, b := range req.Batches {
		if err := b.Validate(); err != nil {
			errs[bi] = err
			continue
		}
		ok := b.First >= st.StartOffset && b.Last < st.StartOffset+int64(len(recs))
		for o := b.First; ok && o <= b.Last; o++ {
			r := recs[o-st.StartOffset]
			// A gap is acknowledged as whatever the offset is acquired
			// as; other types need the member's own acquisition.
			ok = r.state == ShareAcquired && r.member == req.Member
		}
		if !ok {
			errs[bi] = ErrInvalidRecordState
			continue
		}
		for o := b.First; o <= b.Last; o++ {
			i := o - st.StartOffset
			r := recs[i]
			switch b.typeAt(o) {
			case AckAccept:
				r.state = ShareAcknowledged
			case AckRelease:
				r = released(r, req.DeliveryLimit)
			case AckReject, AckGap:
				r.state = ShareArchived
			case AckRenew:
				r.lock = req.NowMs + req.LockMs
			}
			recs[i] = r
		}
	}
	st.compact(recs)
	return errs
}

// ReleaseMember returns every record member holds to AVAILABLE (or
// ARCHIVED at the delivery limit). It reports whether anything changed.
func (st *SharePartitionState) ReleaseMember(member string, nowMs int64, limit int16) bool {
	recs := st.expand()
	before := slices.Clone(st.Batches)
	expire(recs, nowMs, limit)
	for i, r := range recs {
		if r.state == ShareAcquired && r.member == member {
			recs[i] = released(r, limit)
		}
	}
	start := st.StartOffset
	st.compact(recs)
	return start != st.StartOffset || !slices.Equal(before, st.Batches)
}
