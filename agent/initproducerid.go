package agent

// InitProducerId, versions 0–5 (v5 only tells that the client knows
// TRANSACTION_ABORTABLE, KIP-890).
//
// InitProducerId hands out producer ids from the metastore so idempotent
// producers (the default in franz-go and the Java client) can start. An
// idempotent producer that asks again with its id and epoch (KIP-360, v3+,
// after an OUT_OF_ORDER_SEQUENCE_NUMBER or a lost batch) gets the next epoch
// of the same id, or a new id when the epoch would overflow; the new epoch
// restarts its sequences, which the flush commit checks. With a
// transactional id the request goes to that id's transaction coordinator
// (package txn), which completes or aborts what the previous producer left
// and bumps the epoch, fencing it. As in Kafka, a transactional producer's
// timeout must be positive and at most transaction.max.timeout.ms
// (INVALID_TRANSACTION_TIMEOUT), checked before the coordinator is.

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleInitProducerID(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	// Kafka: a transactional producer needs WRITE on its transactional id;
	// an idempotent one IDEMPOTENT_WRITE on the cluster or WRITE on some
	// topic.
	az := a.access(c)
	if req.TransactionalID != nil && *req.TransactionalID != "" {
		if !az.txnID(metastore.OpWrite, *req.TransactionalID) {
			resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			return wire.Respond(resp)
		}
	} else if !az.cluster(metastore.OpIdempotentWrite) && !az.anyTopic(metastore.OpWrite) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return wire.Respond(resp)
	}
	if req.TransactionalID != nil && *req.TransactionalID != "" {
		if req.TransactionTimeoutMillis <= 0 || int64(req.TransactionTimeoutMillis) > a.cfg.TxnMaxTimeout.Milliseconds() {
			resp.ErrorCode = kerr.InvalidTransactionTimeout.Code
			return wire.Respond(resp)
		}
		if !a.isCoordinator(*req.TransactionalID) {
			resp.ErrorCode = kerr.NotCoordinator.Code
			return wire.Respond(resp)
		}
		t, err := a.txns.InitProducer(ctx, *req.TransactionalID, req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch)
		if err != nil {
			resp.ErrorCode = codeOf(err)
			return wire.Respond(resp)
		}
		resp.ProducerID, resp.ProducerEpoch = t.ProducerID, t.Epoch
		return wire.Respond(resp)
	}
	if req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16-1 {
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
		return wire.Respond(resp)
	}
	id, err := a.store.AllocateProducerID(ctx)
	if err != nil {
		a.log.Warn("allocate producer id", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return wire.Respond(resp)
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return wire.Respond(resp)
}
