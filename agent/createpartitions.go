package agent

// CreatePartitions, versions 0–3, validate-only honoured. A manual
// assignment must name one live agent list per new partition (see
// assignment.go), as Kafka requires. Internal topics keep their partition
// count (INVALID_PARTITIONS).

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
		case rt.Count <= int32(len(t.Partitions)):
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("topic has %d partitions; the new count must be larger", len(t.Partitions)))
		case rt.Count > maxPartitions:
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("at most %d partitions", maxPartitions))
		case rt.Assignment != nil && len(rt.Assignment) != int(rt.Count)-len(t.Partitions):
			fail(kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("attempted to add %d additional partition(s), but only %d assignment(s) were specified",
				int(rt.Count)-len(t.Partitions), len(rt.Assignment)))
		case rt.Assignment != nil && a.checkNewAssignments(rt.Assignment, fail):
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

// checkNewAssignments checks each new partition's assignment and reports
// the first failure through fail; it returns whether one failed.
func (a *Agent) checkNewAssignments(as []kmsg.CreatePartitionsRequestTopicAssignment, fail func(int16, string)) bool {
	v := a.members.View()
	replicas := 0
	for _, as := range as {
		if err := checkAssignment(v, as.Replicas, replicas); err != nil {
			fail(kerr.InvalidReplicaAssignment.Code, err.Error())
			return true
		}
		replicas = len(as.Replicas)
	}
	return false
}
