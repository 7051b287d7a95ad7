package agent

// EndTxn, versions 0–4 (v4: the client knows TRANSACTION_ABORTABLE):
// commits or aborts the producer's transaction
// (markers, staged offsets, final state) before answering.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleEndTxn(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	if !a.access(c).txnID(metastore.OpWrite, req.TransactionalID) {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return wire.Respond(resp)
	}
	resp.ErrorCode = codeOf(a.txns.End(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit))
	return wire.Respond(resp)
}

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
