package agent

// ListPartitionReassignments, version 0.
//
// Silt never moves a partition's data (the bucket holds it; agents only
// lead), so no reassignment is ever in progress: the answer lists none,
// for every topic or the ones named. DESCRIBE on the cluster is required
// (CLUSTER_AUTHORIZATION_FAILED), as in Kafka.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleListPartitionReassignments(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.ListPartitionReassignmentsRequest)
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if !a.access(c).cluster(metastore.OpDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
	}
	return wire.Respond(resp)
}
