package group

// ConsumerGroupDescribe, versions 0–1 (KIP-848): each member's epoch,
// subscription, current assignment and target assignment. A group that
// is not a consumer group is GROUP_ID_NOT_FOUND, as in Kafka; one that
// does not exist is Dead with GROUP_ID_NOT_FOUND too.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
)

// ConsumerGroupDescribe describes the consumer groups the request names.
func (c *Coordinator) ConsumerGroupDescribe(ctx context.Context, req *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	names := make(map[metastore.TopicID]string)
	if c.topics != nil {
		if ts, err := c.topics(ctx); err == nil {
			for _, t := range ts {
				names[t.ID] = t.Name
			}
		}
	}
	for _, id := range req.Groups {
		dg := kmsg.NewConsumerGroupDescribeResponseGroup()
		dg.Group = id
		fail := func(code int16, msg string) {
			dg.ErrorCode = code
			if msg != "" {
				dg.ErrorMessage = &msg
			}
		}
		if id == "" {
			fail(kerr.InvalidGroupID.Code, "")
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		g, code := c.acquire(ctx, id)
		if code != 0 {
			fail(code, "")
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		g.mu.Lock()
		switch {
		case g.unloaded:
			fail(kerr.NotCoordinator.Code, "")
		case g.consumer == nil && !g.exists():
			dg.State = "Dead"
			fail(kerr.GroupIDNotFound.Code, "Group "+id+" not found.")
		case g.consumer == nil:
			fail(kerr.GroupIDNotFound.Code, "Group "+id+" is not a consumer group.")
		default:
			cg := g.consumer
			dg.State = cg.stateName(g.generation)
			dg.Epoch, dg.AssignmentEpoch = g.generation, g.generation
			dg.AssignorName = cg.assignor
			if dg.AssignorName == "" {
				dg.AssignorName = AssignorUniform
			}
			for _, mid := range cg.memberIDs() {
				m := cg.members[mid]
				dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
				dm.MemberID, dm.MemberEpoch = m.id, m.epoch
				dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
				if m.instanceID != "" {
					dm.InstanceID = &m.instanceID
				}
				if m.rackID != "" {
					dm.RackID = &m.rackID
				}
				dm.SubscribedTopics = append([]string{}, m.topics...)
				if m.regex != "" {
					dm.SubscribedTopicRegex = &m.regex
				}
				dm.Assignment.TopicPartitions = describeParts(m.assigned, names)
				dm.TargetAssignment.TopicPartitions = describeParts(m.target, names)
				dm.MemberType = 1 // a consumer (KIP-848) member
				if m.classic != nil {
					dm.MemberType = 0 // a member speaking the classic protocol (migration.go)
				}
				dg.Members = append(dg.Members, dm)
			}
		}
		g.mu.Unlock()
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func describeParts(s partSet, names map[metastore.TopicID]string) []kmsg.AssignmentTopicPartition {
	out := []kmsg.AssignmentTopicPartition{}
	for _, st := range encodeParts(s) {
		at := kmsg.NewAssignmentTopicPartition()
		at.TopicID = decodeID(st.ID)
		at.Topic = names[at.TopicID]
		at.Partitions = st.Partitions
		out = append(out, at)
	}
	return out
}
