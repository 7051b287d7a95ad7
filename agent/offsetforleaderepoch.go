package agent

// OffsetForLeaderEpoch, versions 0–4 (client form; replica id -1).
//
// Silt never truncates a partition: what was committed stays, whatever the
// leadership. So for any epoch a client asks about, the end offset is the
// current high watermark, and a client validating its position after a
// leader change always finds it valid. An epoch newer than this agent knows
// gets UNKNOWN_LEADER_EPOCH (the client refreshes metadata and retries), a
// current leader epoch older than its FENCED_LEADER_EPOCH (leaderepoch.go).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/partition"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleOffsetForLeaderEpoch(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	epochs := a.epochCheck()
	az := a.access(c)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		var topic *partition.Topic
		terr := error(kerr.TopicAuthorizationFailed)
		if az.cluster(metastore.OpClusterAction) || az.topic(metastore.OpDescribe, rt.Topic) {
			topic, terr = a.topic(ctx, rt.Topic)
		}
		internal := a.internal.byName(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			stale := epochs.code(ctx, rp.CurrentLeaderEpoch)
			switch {
			case terr != nil:
				sp.ErrorCode = errorCode(terr)
			case rp.Partition < 0 || int(rp.Partition) >= len(topic.Partitions):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case stale != 0:
				sp.ErrorCode = stale
			case rp.LeaderEpoch > epochs.current && !epochs.unsure:
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			case internal != nil:
				end, err := internal.end(ctx, rp.Partition)
				if err != nil {
					sp.ErrorCode = errorCode(err)
					break
				}
				sp.LeaderEpoch, sp.EndOffset = rp.LeaderEpoch, end
			default:
				p := topic.Partitions[rp.Partition]
				// The end offset comes from the store, not the cache: a
				// stale one would make the client detect a false truncation.
				if err := a.topics.Resync(ctx, p); err != nil {
					sp.ErrorCode = errorCode(err)
					break
				}
				hw, _ := p.Offsets()
				sp.LeaderEpoch, sp.EndOffset = rp.LeaderEpoch, hw
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return wire.Respond(resp)
}
