package metastore

import (
	"context"
	"errors"
	"time"
)

// TxnState is the state of a transactional producer's transaction, as in
// Kafka's transaction coordinator.
type TxnState string

// Transaction states. A Prepare* state is saved before markers are written,
// so a coordinator that dies mid-way is completed by the next one.
const (
	TxnEmpty          TxnState = "Empty"
	TxnOngoing        TxnState = "Ongoing"
	TxnPrepareCommit  TxnState = "PrepareCommit"
	TxnPrepareAbort   TxnState = "PrepareAbort"
	TxnCompleteCommit TxnState = "CompleteCommit"
	TxnCompleteAbort  TxnState = "CompleteAbort"
)

// Txn is one transactional id's state.
type Txn struct {
	TransactionalID string
	ProducerID      int64
	Epoch           int16
	State           TxnState
	TimeoutMs       int32
	Partitions      []TxnPartition // partitions added to the current transaction
	Groups          []string       // groups added with AddOffsetsToTxn
	Offsets         []TxnOffset    // TxnOffsetCommit offsets, applied at commit
	StartedAt       time.Time      // when the current transaction started (zero: none)
	UpdatedAt       time.Time      // set by the store
	// CoordinatorEpoch is the claim (TxnStore.ClaimTxn) a PutTxn comes
	// from; 0 puts unfenced. It is not stored: a Txn read back has 0.
	CoordinatorEpoch int64
}

// TxnPartition names a partition by topic name, as the Kafka APIs do.
type TxnPartition struct {
	Topic     string
	Partition int32
}

// TxnOffset is one offset a transaction commits for a group.
type TxnOffset struct {
	Group string
	CommittedOffset
}

// StartMillis is StartedAt as the stores keep it: Unix milliseconds, 0 for
// none.
func (t *Txn) StartMillis() int64 {
	if t.StartedAt.IsZero() {
		return 0
	}
	return t.StartedAt.UnixMilli()
}

// HasPartition reports whether the transaction holds the partition.
func (t *Txn) HasPartition(topic string, partition int32) bool {
	for _, p := range t.Partitions {
		if p.Topic == topic && p.Partition == partition {
			return true
		}
	}
	return false
}

// AbortedTxn is one aborted transaction on one partition: its data lies in
// [FirstOffset, LastOffset], LastOffset being the abort marker's offset.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// OngoingTxn is a transaction with data but no marker yet on a partition.
type OngoingTxn struct {
	ProducerID  int64
	FirstOffset int64
}

// ErrTxnConflict: PutTxn found the transaction changed (another coordinator
// moved it, or it already exists).
var ErrTxnConflict = errors.New("transaction state changed concurrently")

// TxnStore keeps transaction coordinator state and the per-partition
// bookkeeping CommitFlush maintains for transactional batches.
//
// CommitFlush, for every accepted batch with IsTransactional set: a data
// batch that is the first of its producer on the partition since its last
// marker records an ongoing transaction at its offset; a control batch (a
// marker) ends the producer's ongoing transaction on the partition, and for
// an abort marker records an aborted transaction up to the marker. A
// marker with no ongoing transaction (a duplicate) changes nothing. A
// marker also raises the producer's epoch on the partition to its own, so
// batches of older epochs are fenced, committed later in the same flush or
// in a later one, and even where the producer had no state on the
// partition (see ProducerState.Mark). The last stable offset is the first
// offset of the partition's oldest ongoing transaction, or the high
// watermark.
//
// A marker is tied to the transaction it ends through the coordinator's
// state, which PutTxn fences: CommitFlush accepts a marker only if the
// transaction of its producer id is, at that moment, at the marker's epoch
// and in one of MarkerStates(marker is an abort). Any other marker is
// stale (a deposed coordinator's, or one delayed past the end of its
// transaction and the start of the next, same producer id and epoch): it
// is answered ErrStaleMarker, not appended, and changes nothing.
type TxnStore interface {
	// Txn returns the transaction of a transactional id, ok=false if none.
	Txn(ctx context.Context, id string) (t Txn, ok bool, err error)
	// TxnByProducer returns the transaction whose producer id is pid.
	TxnByProducer(ctx context.Context, pid int64) (t Txn, ok bool, err error)
	// Txns lists all transactions, ordered by transactional id.
	Txns(ctx context.Context) ([]Txn, error)
	// PutTxn stores t if the stored transaction still has prev's producer
	// id, epoch, state, start (StartMillis), partitions, groups and offsets
	// (prev nil: only if none is stored). Otherwise it changes nothing and
	// returns ErrTxnConflict. This is the fence between two agents that
	// both believe they coordinate a transactional id. The start tells two
	// transactions of one producer id and epoch apart, so a coordinator
	// paused in PrepareCommit of one cannot complete the next one, also in
	// PrepareCommit, over the coordinator that runs it. The lists make
	// additions to one ongoing transaction from different agents
	// (AddPartitionsToTxn on its coordinator, TxnOffsetCommit on the
	// group's) a compare-and-set too: the later of two writers that read
	// the same transaction is refused instead of dropping the other's
	// addition.
	//
	// With t.CoordinatorEpoch > 0, the id's coordinator epoch (ClaimTxn)
	// must still be t.CoordinatorEpoch, else nothing changes and the error
	// wraps ErrCoordinatorMoved: a request a deposed coordinator still had
	// in hand cannot move a transaction its successor runs, even one with
	// the same producer id, epoch and state (before KIP-890 nothing else
	// tells one transaction of a producer from its next).
	//
	// Saving CompleteCommit over PrepareCommit also applies prev.Offsets
	// to their groups (as CommitOffsets), in the same transaction: the
	// offsets of a committed transaction are applied once, by the put that
	// completes it, never by a coordinator whose put is refused.
	PutTxn(ctx context.Context, t Txn, prev *Txn) error
	// ClaimTxn makes the caller the transactional id's coordinator of
	// record: it moves the id's coordinator epoch forward and returns it.
	// Puts that carry an older epoch are refused from then on.
	ClaimTxn(ctx context.Context, id string) (epoch int64, err error)
	// AbortedTxns lists tp's aborted transactions overlapping offsets
	// [from, to), ordered by first offset. It fails with
	// ErrOffsetOutOfRange when from is below tp's log start offset, read
	// with the list: the transactions below the log start are pruned with
	// it, so the list could miss one that covers records a reader still
	// holds from before the log start moved (it would serve aborted
	// records as committed).
	AbortedTxns(ctx context.Context, tp TopicPartition, from, to int64) ([]AbortedTxn, error)
	// OngoingTxns lists tp's ongoing transactions, ordered by first offset.
	OngoingTxns(ctx context.Context, tp TopicPartition) ([]OngoingTxn, error)
	// ExpireTxns forgets transactional ids idle since olderThan and not in
	// the middle of a transaction (Empty, CompleteCommit, CompleteAbort), as
	// Kafka does after transactional.id.expiration.ms, and reports how many.
	ExpireTxns(ctx context.Context, olderThan time.Time) (int, error)
}

// MarkerStates are the states in which a transaction accepts markers of
// its producer id and epoch. A commit marker ends a transaction only in
// PrepareCommit. An abort marker ends one in PrepareAbort, and in a
// Complete* state aborts a dangling write (data that committed after its
// transaction ended): with no transaction open, every ongoing entry of
// the producer is one. Coordinators therefore save Prepare* before writing
// a transaction's markers and Complete* only after they are committed, and
// write dangling-write aborts only while the transaction is Complete*.
func MarkerStates(abort bool) []TxnState {
	if abort {
		return []TxnState{TxnPrepareAbort, TxnCompleteCommit, TxnCompleteAbort}
	}
	return []TxnState{TxnPrepareCommit}
}

// GroupOffsets are offsets a transaction commits for one group.
type GroupOffsets struct {
	Group   string
	Offsets []CommittedOffset
}

// OffsetsCommittedBy returns what a PutTxn of t over prev commits to
// groups: prev's offsets by group, in the order they were added (a later
// offset of a partition overrides an earlier one), when t completes prev's
// commit (CompleteCommit over PrepareCommit); nothing otherwise.
func OffsetsCommittedBy(t Txn, prev *Txn) []GroupOffsets {
	if prev == nil || prev.State != TxnPrepareCommit || t.State != TxnCompleteCommit {
		return nil
	}
	var out []GroupOffsets
	at := make(map[string]int)
	for _, o := range prev.Offsets {
		i, ok := at[o.Group]
		if !ok {
			i = len(out)
			at[o.Group] = i
			out = append(out, GroupOffsets{Group: o.Group})
		}
		out[i].Offsets = append(out[i].Offsets, o.CommittedOffset)
	}
	return out
}
