package agent

// ElectLeaders, versions 0–2.
//
// Silt's leader of a partition is the live agent that rendezvous hashing
// picks, and it is also the partition's only listed replica, so it is
// always the preferred leader and never needs an unclean election: every
// existing partition named answers ELECTION_NOT_NEEDED, as Kafka answers
// for a partition already led by its preferred replica. Asked for every
// partition (null topics), Kafka leaves out those whose election was not
// needed, which here is all of them. ALTER on the cluster is required
// (CLUSTER_AUTHORIZATION_FAILED).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleElectLeaders(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.ElectLeadersRequest)
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	code := int16(0)
	switch {
	case !a.access(c).cluster(metastore.OpAlter):
		code = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorCode = code
	case req.ElectionType != 0 && req.ElectionType != 1: // preferred, unclean
		code = kerr.InvalidRequest.Code
	}
	for _, rt := range req.Topics {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = rt.Topic
		topic, terr := a.topics.Get(ctx, rt.Topic)
		for _, p := range rt.Partitions {
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition = p
			switch {
			case code != 0:
				sp.ErrorCode = code
			case terr != nil:
				sp.ErrorCode = errorCode(terr)
			case topic.Partition(p) == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				sp.ErrorCode = kerr.ElectionNotNeeded.Code
			}
			if sp.ErrorCode != 0 {
				msg := kerr.TypedErrorForCode(sp.ErrorCode).Description
				sp.ErrorMessage = &msg
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	// Topics == nil asks for every partition: nothing to list.
	return wire.Respond(resp)
}
