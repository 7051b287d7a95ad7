package agent

// Transaction APIs: InitProducerId with a transactional id (in cluster.go),
// AddPartitionsToTxn 0–3 (the KIP-890 broker-side verification form, v4+,
// is not offered), AddOffsetsToTxn 0–3, TxnOffsetCommit 0–3, EndTxn 0–3,
// DescribeTransactions 0, ListTransactions 0–1 and DescribeProducers 0.
// Coordinator requests for ids this agent does not coordinate get
// NOT_COORDINATOR; the metastore's compare-and-set is the real fence.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

// codeOf turns a coordinator error into a Kafka error code.
func codeOf(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	if err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	return 0
}

// beginOrContinue loads id's transaction for AddPartitions/AddOffsets and
// returns it ready to extend (Ongoing), with the stored version as prev.
func (c *txnCoordinator) beginOrContinue(ctx context.Context, id string, pid int64, epoch int16) (next, prev metastore.Txn, err error) {
	if !c.a.isCoordinator(id) {
		return next, prev, kerr.NotCoordinator
	}
	prev, ok, err := c.load(ctx, id)
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

// handleAddPartitionsToTxn answers AddPartitionsToTxn v0–3 (one
// transaction, from its producer) and v4–5 (KIP-890: several transactions
// in one request, each either adding partitions or, with VerifyOnly, only
// checking that they are already in the ongoing transaction).
func (a *Agent) handleAddPartitionsToTxn(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version < 4 {
		topics := make([]txnTopic, 0, len(req.Topics))
		for _, rt := range req.Topics {
			topics = append(topics, txnTopic{rt.Topic, rt.Partitions})
		}
		codes, err := a.addPartitions(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, topics, false)
		for _, rt := range req.Topics {
			t := kmsg.NewAddPartitionsToTxnResponseTopic()
			t.Topic = rt.Topic
			for _, p := range rt.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition = p
				rp.ErrorCode = partitionCode(codes, err, rt.Topic, p)
				t.Partitions = append(t.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return wire.Respond(resp)
	}
	for _, tx := range req.Transactions {
		topics := make([]txnTopic, 0, len(tx.Topics))
		for _, rt := range tx.Topics {
			topics = append(topics, txnTopic{rt.Topic, rt.Partitions})
		}
		codes, err := a.addPartitions(ctx, tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, topics, tx.VerifyOnly)
		st := kmsg.NewAddPartitionsToTxnResponseTransaction()
		st.TransactionalID = tx.TransactionalID
		for _, rt := range tx.Topics {
			t := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			t.Topic = rt.Topic
			for _, p := range rt.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition = p
				rp.ErrorCode = partitionCode(codes, err, rt.Topic, p)
				t.Partitions = append(t.Partitions, rp)
			}
			st.Topics = append(st.Topics, t)
		}
		resp.Transactions = append(resp.Transactions, st)
	}
	return wire.Respond(resp)
}

// txnTopic is one topic's partitions in an AddPartitionsToTxn request.
type txnTopic struct {
	topic      string
	partitions []int32
}

func partitionCode(codes map[metastore.TxnPartition]int16, err error, topic string, p int32) int16 {
	if err != nil {
		return codeOf(err)
	}
	return codes[metastore.TxnPartition{Topic: topic, Partition: p}]
}

// addPartitions adds topics' partitions to transaction id, or with
// verifyOnly checks that each is already in its ongoing transaction
// (INVALID_TXN_STATE for one that is not), changing nothing. A request with
// an unknown partition adds none (OPERATION_NOT_ATTEMPTED for the others),
// as Kafka does.
func (a *Agent) addPartitions(ctx context.Context, id string, pid int64, epoch int16, topics []txnTopic, verifyOnly bool) (map[metastore.TxnPartition]int16, error) {
	codes := make(map[metastore.TxnPartition]int16)
	defer a.txns.lock(id)()
	if verifyOnly {
		if !a.isCoordinator(id) {
			return nil, kerr.NotCoordinator
		}
		cur, ok, err := a.txns.load(ctx, id)
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
			for _, p := range rt.partitions {
				if cur.State != metastore.TxnOngoing || !cur.HasPartition(rt.topic, p) {
					codes[metastore.TxnPartition{Topic: rt.topic, Partition: p}] = kerr.InvalidTxnState.Code
				}
			}
		}
		return codes, nil
	}
	next, prev, err := a.txns.beginOrContinue(ctx, id, pid, epoch)
	if err != nil {
		return nil, err
	}
	bad := false
	for _, rt := range topics {
		topic, terr := a.topics.Get(ctx, rt.topic)
		for _, p := range rt.partitions {
			tp := metastore.TxnPartition{Topic: rt.topic, Partition: p}
			if terr != nil || p < 0 || int(p) >= len(topic.Partitions) {
				codes[tp] = kerr.UnknownTopicOrPartition.Code
				bad = true
				continue
			}
			if !next.HasPartition(rt.topic, p) {
				next.Partitions = append(next.Partitions, tp)
			}
		}
	}
	if bad {
		for _, rt := range topics {
			for _, p := range rt.partitions {
				if tp := (metastore.TxnPartition{Topic: rt.topic, Partition: p}); codes[tp] == 0 {
					codes[tp] = kerr.OperationNotAttempted.Code
				}
			}
		}
		return codes, nil
	}
	return codes, a.txns.put(ctx, next, &prev)
}

func (a *Agent) handleAddOffsetsToTxn(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	err := func() error {
		defer a.txns.lock(req.TransactionalID)()
		next, prev, err := a.txns.beginOrContinue(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch)
		if err != nil {
			return err
		}
		for _, g := range next.Groups {
			if g == req.Group {
				if prev.State == metastore.TxnOngoing {
					return nil
				}
			}
		}
		next.Groups = append(next.Groups, req.Group)
		return a.txns.put(ctx, next, &prev)
	}()
	resp.ErrorCode = codeOf(err)
	return wire.Respond(resp)
}

// handleTxnOffsetCommit stores the offsets in the transaction; EndTxn
// applies them to the group when the transaction commits. Any agent may
// take it: the transaction's compare-and-set decides.
func (a *Agent) handleTxnOffsetCommit(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.TxnOffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	err := func() error {
		if !a.isCoordinator(req.Group) {
			return kerr.NotCoordinator
		}
		for attempt := 0; ; attempt++ {
			prev, ok, err := a.txns.load(ctx, req.TransactionalID)
			if err != nil {
				return err
			}
			if !ok {
				return kerr.InvalidProducerIDMapping
			}
			if err := checkProducer(prev, req.ProducerID, req.ProducerEpoch); err != nil {
				return err
			}
			if prev.State != metastore.TxnOngoing {
				return kerr.InvalidTxnState
			}
			added := false
			for _, g := range prev.Groups {
				added = added || g == req.Group
			}
			if !added {
				return kerr.InvalidTxnState
			}
			next := prev
			next.Offsets = append([]metastore.TxnOffset(nil), prev.Offsets...)
			for _, rt := range req.Topics {
				for _, p := range rt.Partitions {
					o := metastore.TxnOffset{Group: req.Group, CommittedOffset: metastore.CommittedOffset{
						Topic: rt.Topic, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch}}
					if p.Metadata != nil {
						o.Metadata = *p.Metadata
					}
					next.Offsets = append(next.Offsets, o)
				}
			}
			err = a.store.PutTxn(ctx, next, &prev)
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
	}()
	for _, rt := range req.Topics {
		t := kmsg.NewTxnOffsetCommitResponseTopic()
		t.Topic = rt.Topic
		for _, p := range rt.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codeOf(err)
			t.Partitions = append(t.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return wire.Respond(resp)
}

func (a *Agent) handleEndTxn(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	c := a.txns
	err := func() error {
		if !a.isCoordinator(req.TransactionalID) {
			return kerr.NotCoordinator
		}
		defer c.lock(req.TransactionalID)()
		t, ok, err := c.load(ctx, req.TransactionalID)
		if err != nil {
			return err
		}
		if !ok {
			return kerr.InvalidProducerIDMapping
		}
		if err := checkProducer(t, req.ProducerID, req.ProducerEpoch); err != nil {
			return err
		}
		want, done := metastore.TxnPrepareAbort, metastore.TxnCompleteAbort
		if req.Commit {
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
	}()
	resp.ErrorCode = codeOf(err)
	return wire.Respond(resp)
}

func (a *Agent) handleDescribeTransactions(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		d := kmsg.NewDescribeTransactionsResponseTransactionState()
		d.TransactionalID = id
		d.ProducerID, d.ProducerEpoch, d.StartTimestamp = -1, -1, -1
		if !a.isCoordinator(id) {
			d.ErrorCode = kerr.NotCoordinator.Code
			resp.TransactionStates = append(resp.TransactionStates, d)
			continue
		}
		t, ok, err := a.store.Txn(ctx, id)
		switch {
		case err != nil:
			d.ErrorCode = kerr.CoordinatorNotAvailable.Code
		case !ok:
			d.ErrorCode = kerr.TransactionalIDNotFound.Code
		default:
			d.State, d.TimeoutMillis = string(t.State), t.TimeoutMs
			d.ProducerID, d.ProducerEpoch = t.ProducerID, t.Epoch
			if !t.StartedAt.IsZero() {
				d.StartTimestamp = t.StartedAt.UnixMilli()
			}
			byTopic := make(map[string]int)
			var parts []metastore.TxnPartition
			if t.State != metastore.TxnCompleteCommit && t.State != metastore.TxnCompleteAbort {
				parts = t.Partitions // a completed transaction lists none, as in Kafka
			}
			for _, p := range parts {
				i, ok := byTopic[p.Topic]
				if !ok {
					i = len(d.Topics)
					byTopic[p.Topic] = i
					dt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
					dt.Topic = p.Topic
					d.Topics = append(d.Topics, dt)
				}
				d.Topics[i].Partitions = append(d.Topics[i].Partitions, p.Partition)
			}
		}
		resp.TransactionStates = append(resp.TransactionStates, d)
	}
	return wire.Respond(resp)
}

func (a *Agent) handleListTransactions(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	all, err := a.store.Txns(ctx)
	if err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return wire.Respond(resp)
	}
	pids := make(map[int64]bool)
	for _, p := range req.ProducerIDFilters {
		pids[p] = true
	}
	states := make(map[string]bool)
	for _, s := range req.StateFilters {
		states[s] = true
	}
	for _, t := range all {
		if !a.isCoordinator(t.TransactionalID) ||
			len(pids) > 0 && !pids[t.ProducerID] || len(states) > 0 && !states[string(t.State)] ||
			req.DurationFilterMillis > 0 && (t.StartedAt.IsZero() || time.Since(t.StartedAt) < time.Duration(req.DurationFilterMillis)*time.Millisecond) {
			continue
		}
		lt := kmsg.NewListTransactionsResponseTransactionState()
		lt.TransactionalID, lt.ProducerID, lt.TransactionState = t.TransactionalID, t.ProducerID, string(t.State)
		resp.TransactionStates = append(resp.TransactionStates, lt)
	}
	return wire.Respond(resp)
}

func (a *Agent) handleDescribeProducers(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewDescribeProducersResponseTopic()
		t.Topic = rt.Topic
		topic, terr := a.topics.Get(ctx, rt.Topic)
		for _, p := range rt.Partitions {
			rp := kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition = p
			if terr != nil || p < 0 || int(p) >= len(topic.Partitions) {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				t.Partitions = append(t.Partitions, rp)
				continue
			}
			ongoing, err := a.store.OngoingTxns(ctx, topic.Partitions[p].TP)
			if err != nil {
				rp.ErrorCode = kerr.KafkaStorageError.Code
			}
			for _, o := range ongoing {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = o.ProducerID, -1, -1
				ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, -1, o.FirstOffset
				if tx, ok, err := a.store.TxnByProducer(ctx, o.ProducerID); err == nil && ok {
					ap.ProducerEpoch = int32(tx.Epoch)
				}
				rp.ActiveProducers = append(rp.ActiveProducers, ap)
			}
			t.Partitions = append(t.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return wire.Respond(resp)
}
