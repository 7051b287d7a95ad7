package txn

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/siltstream/silt/metastore"
)

// beginOrContinue loads id's transaction for AddPartitions/AddOffsets and
// returns it ready to extend (Ongoing), with the stored version as prev.
func (c *Coordinator) beginOrContinue(ctx context.Context, id string, pid int64, epoch int16) (next, prev metastore.Txn, err error) {
	if !c.isCoordinator(id) {
		return next, prev, kerr.NotCoordinator
	}
	prev, ok, err := c.loadClaimed(ctx, id)
	if err != nil {
		return next, prev, err
	}
	if !ok {
		return next, prev, kerr.InvalidProducerIDMapping
	}
	if err := checkProducer(prev, pid, epoch); err != nil {
		return next, prev, err
	}
	next = prev
	switch prev.State {
	case metastore.TxnOngoing:
	case metastore.TxnEmpty, metastore.TxnCompleteCommit, metastore.TxnCompleteAbort:
		next.State, next.StartedAt = metastore.TxnOngoing, time.Now()
		next.Partitions, next.Groups, next.Offsets = nil, nil, nil
	default:
		return next, prev, kerr.ConcurrentTransactions
	}
	return next, prev, nil
}

// TopicPartitions is one topic's partitions in an AddPartitionsToTxn
// request.
type TopicPartitions struct {
	Topic      string
	Partitions []int32
}

// AddPartitions adds topics' partitions to transaction id, or with
// verifyOnly checks that each is already in its ongoing transaction
// (INVALID_TXN_STATE for one that is not), changing nothing. A request with
// an unknown partition adds none (OPERATION_NOT_ATTEMPTED for the others),
// as Kafka does. The map holds per-partition error codes (absent: none); a
// returned error applies to every partition.
func (c *Coordinator) AddPartitions(ctx context.Context, id string, pid int64, epoch int16, topics []TopicPartitions, verifyOnly bool) (map[metastore.TxnPartition]int16, error) {
	codes := make(map[metastore.TxnPartition]int16)
	defer c.lock(id)()
	if verifyOnly {
		if !c.isCoordinator(id) {
			return nil, kerr.NotCoordinator
		}
		cur, ok, err := c.load(ctx, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, kerr.InvalidProducerIDMapping
		}
		if err := checkProducer(cur, pid, epoch); err != nil {
			return nil, err
		}
		for _, rt := range topics {
			for _, p := range rt.Partitions {
				if cur.State != metastore.TxnOngoing || !cur.HasPartition(rt.Topic, p) {
					codes[metastore.TxnPartition{Topic: rt.Topic, Partition: p}] = kerr.InvalidTxnState.Code
				}
			}
		}
		return codes, nil
	}
	next, prev, err := c.beginOrContinue(ctx, id, pid, epoch)
	if err != nil {
		return nil, err
	}
	bad := false
	for _, rt := range topics {
		_, n, terr := c.topics.Resolve(ctx, rt.Topic)
		for _, p := range rt.Partitions {
			tp := metastore.TxnPartition{Topic: rt.Topic, Partition: p}
			if terr != nil || p < 0 || p >= n {
				codes[tp] = kerr.UnknownTopicOrPartition.Code
				bad = true
				continue
			}
			if !next.HasPartition(rt.Topic, p) {
				next.Partitions = append(next.Partitions, tp)
			}
		}
	}
	if bad {
		for _, rt := range topics {
			for _, p := range rt.Partitions {
				if tp := (metastore.TxnPartition{Topic: rt.Topic, Partition: p}); codes[tp] == 0 {
					codes[tp] = kerr.OperationNotAttempted.Code
				}
			}
		}
		return codes, nil
	}
	return codes, c.put(ctx, next, &prev)
}

// AddOffsets adds a consumer group to transaction id (AddOffsetsToTxn).
func (c *Coordinator) AddOffsets(ctx context.Context, id string, pid int64, epoch int16, group string) error {
	defer c.lock(id)()
	next, prev, err := c.beginOrContinue(ctx, id, pid, epoch)
	if err != nil {
		return err
	}
	for _, g := range next.Groups {
		if g == group && prev.State == metastore.TxnOngoing {
			return nil
		}
	}
	next.Groups = append(next.Groups, group)
	return c.put(ctx, next, &prev)
}

// CommitOffsets stores offsets in transaction id (TxnOffsetCommit); End
// applies them to the group when the transaction commits. The caller is
// the group's coordinator and has fenced the committer (generation, member
// id, group.instance.id: group.Coordinator.TxnOffsetCommit); the
// transaction's compare-and-set decides the rest. Offsets are not fenced
// again when the transaction commits: the commit is decided by then, and
// Kafka applies them too.
func (c *Coordinator) CommitOffsets(ctx context.Context, id string, pid int64, epoch int16, group string, offsets []metastore.CommittedOffset) error {
	for attempt := 0; ; attempt++ {
		prev, ok, err := c.load(ctx, id)
		if err != nil {
			return err
		}
		if !ok {
			return kerr.InvalidProducerIDMapping
		}
		if err := checkProducer(prev, pid, epoch); err != nil {
			return err
		}
		if prev.State != metastore.TxnOngoing {
			return kerr.InvalidTxnState
		}
		added := false
		for _, g := range prev.Groups {
			added = added || g == group
		}
		if !added {
			return kerr.InvalidTxnState
		}
		next := prev
		next.Offsets = append([]metastore.TxnOffset(nil), prev.Offsets...)
		for _, o := range offsets {
			next.Offsets = append(next.Offsets, metastore.TxnOffset{Group: group, CommittedOffset: o})
		}
		err = c.store.PutTxn(ctx, next, &prev)
		if errors.Is(err, metastore.ErrTxnConflict) && attempt < 3 {
			continue // offsets added concurrently by another request: re-read
		}
		if errors.Is(err, metastore.ErrTxnConflict) {
			return kerr.ConcurrentTransactions
		}
		if err != nil {
			return kerr.CoordinatorNotAvailable
		}
		return nil
	}
}

// End commits or aborts transaction id (EndTxn): it saves the Prepare*
// state, writes the markers, applies offsets on commit and saves the
// Complete* state. A retry of an EndTxn that completed, or is completing,
// succeeds.
func (c *Coordinator) End(ctx context.Context, id string, pid int64, epoch int16, commit bool) error {
	if !c.isCoordinator(id) {
		return kerr.NotCoordinator
	}
	defer c.lock(id)()
	t, ok, err := c.loadClaimed(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return kerr.InvalidProducerIDMapping
	}
	if err := checkProducer(t, pid, epoch); err != nil {
		return err
	}
	want, done := metastore.TxnPrepareAbort, metastore.TxnCompleteAbort
	if commit {
		want, done = metastore.TxnPrepareCommit, metastore.TxnCompleteCommit
	}
	switch t.State {
	case metastore.TxnEmpty:
		return nil // nothing was added: nothing to end
	case done:
		return nil // a retry of an EndTxn that completed
	case want:
		_, err := c.complete(ctx, t) // a retry while completing
		return err
	case metastore.TxnOngoing:
	default:
		return kerr.InvalidTxnState
	}
	next := t
	next.State = want
	if err := c.put(ctx, next, &t); err != nil {
		return err
	}
	_, err = c.complete(ctx, next)
	return err
}
