package agent

// CreatePartitions, versions 0–3, validate-only honoured. Internal topics
// keep their partition count (INVALID_PARTITIONS).

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleCreatePartitions(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	az := a.access(c)
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		fail := func(code int16, msg string) {
			st.ErrorCode = code
			st.ErrorMessage = &msg
		}
		if !az.topic(metastore.OpAlter, rt.Topic) {
			fail(kerr.TopicAuthorizationFailed.Code, "The topic authorization is failed.")
			resp.Topics = append(resp.Topics, st)
			continue
		}
		t, err := a.topics.Get(ctx, rt.Topic)
		switch {
		case a.internal.byName(rt.Topic) != nil:
			// Clients find a group's partition of __consumer_offsets by
			// hashing over the partition count: it cannot change.
			fail(kerr.InvalidPartitions.Code, "the partitions of internal topic "+rt.Topic+" are fixed")
		case err != nil:
			fail(errorCode(err), err.Error())
		case len(rt.Assignment) > 0:
			fail(kerr.InvalidReplicaAssignment.Code, "Silt does not place replicas; omit the assignment")
		case rt.Count <= int32(len(t.Partitions)):
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("topic has %d partitions; the new count must be larger", len(t.Partitions)))
		case rt.Count > maxPartitions:
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("at most %d partitions", maxPartitions))
		case req.ValidateOnly:
		default:
			if err := a.store.CreatePartitions(ctx, rt.Topic, rt.Count); err != nil {
				fail(kerr.UnknownServerError.Code, err.Error())
				break
			}
			if nt, err := a.store.Topic(ctx, rt.Topic); err == nil {
				a.topics.Put(nt)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return wire.Respond(resp)
}
