package agent

// DescribeCluster, versions 0–1: the live agents of the current view. The
// controller id names a live agent chosen by placement; Silt has no
// controller, but admin clients expect one.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleDescribeCluster(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = a.access(c).clusterOperations()
	}
	resp.ClusterID = a.cfg.ClusterID
	resp.ControllerID = a.coordinatorFor("controller").NodeID
	for _, b := range brokersOf(a.members.View()) {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack = b.NodeID, b.Host, b.Port, b.Rack
		resp.Brokers = append(resp.Brokers, db)
	}
	return wire.Respond(resp)
}
