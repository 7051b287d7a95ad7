package agent

// AlterPartitionReassignments, version 0.
//
// Silt lists one replica per partition, its leader, chosen by rendezvous
// hashing over the live agents; it has no replica sets to change. As in
// Kafka's controller: an unknown topic or partition answers
// UNKNOWN_TOPIC_OR_PARTITION; cancelling (null replicas) answers
// NO_REASSIGNMENT_IN_PROGRESS, since none ever is; a target that is not a
// valid assignment of live agents answers INVALID_REPLICA_ASSIGNMENT; and a
// target equal to the current replicas (as this client's Metadata lists
// them) is nothing to do, answered without error. Any other target is
// refused with INVALID_REPLICA_ASSIGNMENT saying why: Silt places
// partitions itself. ALTER on the cluster is required
// (CLUSTER_AUTHORIZATION_FAILED).

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/cluster"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleAlterPartitionReassignments(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	denied := !a.access(c).cluster(metastore.OpAlter)
	if denied {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
	}
	v := a.viewFor(c)
	zone := cluster.ClientZone(c.ClientID())
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		topic, terr := a.topics.Get(ctx, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			var msg string
			switch {
			case denied:
				sp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			case terr != nil:
				sp.ErrorCode = errorCode(terr)
			case topic.Partition(rp.Partition) == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Replicas == nil:
				sp.ErrorCode = kerr.NoReassignmentInProgress.Code
			default:
				if err := checkAssignment(v, rp.Replicas, 0); err != nil {
					sp.ErrorCode, msg = kerr.InvalidReplicaAssignment.Code, err.Error()
					break
				}
				current := []int32{v.LeaderFor(topic.Partition(rp.Partition).TP, zone).NodeID}
				if !slices.Equal(rp.Replicas, current) {
					sp.ErrorCode = kerr.InvalidReplicaAssignment.Code
					msg = "Silt places partitions itself (the bucket holds the data, the leader is chosen among live agents); the only assignment accepted is the current one"
				}
			}
			if sp.ErrorCode != 0 {
				if msg == "" {
					msg = kerr.TypedErrorForCode(sp.ErrorCode).Description
				}
				sp.ErrorMessage = &msg
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return wire.Respond(resp)
}
