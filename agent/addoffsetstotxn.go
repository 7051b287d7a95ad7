package agent

// AddOffsetsToTxn, versions 0–4 (v4: the client knows TRANSACTION_ABORTABLE):
// adds a consumer group to the producer's
// transaction, so TxnOffsetCommit may stage its offsets.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleAddOffsetsToTxn(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	switch az := a.access(c); {
	case !az.txnID(metastore.OpWrite, req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return wire.Respond(resp)
	case !az.group(metastore.OpRead, req.Group):
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return wire.Respond(resp)
	}
	resp.ErrorCode = codeOf(a.txns.AddOffsets(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group))
	return wire.Respond(resp)
}
