package agent

// DescribeTransactions, version 0, and ListTransactions, versions 0–1:
// read from the metastore, for the transactional ids this agent
// coordinates.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleDescribeTransactions(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	az := a.access(c)
	for _, id := range req.TransactionalIDs {
		d := kmsg.NewDescribeTransactionsResponseTransactionState()
		d.TransactionalID = id
		d.ProducerID, d.ProducerEpoch, d.StartTimestamp = -1, -1, -1
		if !az.txnID(metastore.OpDescribe, id) {
			d.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			resp.TransactionStates = append(resp.TransactionStates, d)
			continue
		}
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
				if !az.topic(metastore.OpDescribe, p.Topic) {
					continue // Kafka lists only partitions the principal may describe
				}
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

func (a *Agent) handleListTransactions(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	az := a.access(c)
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
		if !a.isCoordinator(t.TransactionalID) || !az.txnID(metastore.OpDescribe, t.TransactionalID) ||
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
