package group

// ShareGroupDescribe, version 1 (KIP-932): each member's epoch,
// subscription and assignment. A group of another type is
// GROUP_ID_NOT_FOUND, as in Kafka; one that does not exist is Dead with
// GROUP_ID_NOT_FOUND too.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
)

// ShareGroupDescribe describes the share groups the request names.
func (c *Coordinator) ShareGroupDescribe(ctx context.Context, req *kmsg.ShareGroupDescribeRequest) *kmsg.ShareGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
	names := make(map[metastore.TopicID]string)
	if c.topics != nil {
		if ts, err := c.topics(ctx); err == nil {
			for _, t := range ts {
				names[t.ID] = t.Name
			}
		}
	}
	for _, id := range req.GroupIDs {
		dg := kmsg.NewShareGroupDescribeResponseGroup()
		dg.GroupID = id
		dg.AuthorizedOperations = -2147483648 // not requested / not computed
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
		case g.share == nil && g.consumer == nil && !g.exists():
			dg.GroupState = "Dead"
			fail(kerr.GroupIDNotFound.Code, "Group "+id+" not found.")
		case g.share == nil:
			fail(kerr.GroupIDNotFound.Code, "Group "+id+" is not a share group.")
		default:
			sh := g.share
			dg.GroupState = sh.stateName()
			dg.GroupEpoch, dg.AssignmentEpoch = g.generation, g.generation
			dg.Assignor = AssignorSimple
			for _, mid := range sh.memberIDs() {
				m := sh.members[mid]
				dm := kmsg.NewShareGroupDescribeResponseGroupMember()
				dm.MemberID, dm.MemberEpoch = m.id, m.epoch
				dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
				if m.rackID != "" {
					dm.RackID = &m.rackID
				}
				dm.SubscribedTopicNames = append([]string{}, m.topics...)
				dm.Assignment.TopicPartitions = []kmsg.ShareGroupDescribeResponseGroupMemberAssignmentTopicPartition{}
				for _, st := range encodeParts(m.assigned) {
					at := kmsg.NewShareGroupDescribeResponseGroupMemberAssignmentTopicPartition()
					at.TopicID = decodeID(st.ID)
					at.Topic = names[at.TopicID]
					at.Partitions = st.Partitions
					dm.Assignment.TopicPartitions = append(dm.Assignment.TopicPartitions, at)
				}
				dg.Members = append(dg.Members, dm)
			}
		}
		g.mu.Unlock()
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}
