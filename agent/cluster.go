package agent

// DescribeCluster (0–1) and InitProducerId (0–4).
//
// InitProducerId hands out producer ids from the metastore so idempotent
// producers (the default in franz-go and the Java client) can start;
// transactional ids are refused until transactions exist (issue 5), with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED so clients fail clearly instead of
// hanging.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleDescribeCluster(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = a.cfg.ClusterID
	resp.ControllerID = a.coordinatorFor("controller").nodeID
	for _, b := range brokersOf(a.members.view()) {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack = b.NodeID, b.Host, b.Port, b.Rack
		resp.Brokers = append(resp.Brokers, db)
	}
	return wire.Respond(resp)
}

func (a *Agent) handleInitProducerID(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
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
