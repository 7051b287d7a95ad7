package agent

// DescribeTopicPartitions, version 0 (KIP-966; what Kafka ≥ 3.8 admin tools
// describe topics with).
//
// Metadata's partitions, paginated as Kafka's broker does: topics sorted by
// name from the cursor's, partitions from the cursor's partition, at most
// ResponsePartitionLimit (capped at 2000, Kafka's
// max.request.partition.size.limit) partitions per answer, and NextCursor
// naming where the next page starts. An empty topic list means every topic
// the principal may describe; a named topic it may not is
// TOPIC_AUTHORIZATION_FAILED, one that does not exist
// UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an invalid name).
// A cursor whose topic is not among those named, or whose partition is
// negative, makes the whole request INVALID_REQUEST.

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/cluster"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/partition"
	"github.com/siltstream/silt/wire"
)

// maxDescribePartitions is Kafka's max.request.partition.size.limit default.
const maxDescribePartitions = 2000

func (a *Agent) handleDescribeTopicPartitions(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DescribeTopicPartitionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	az := a.access(c)
	all := len(req.Topics) == 0
	from := ""
	if req.Cursor != nil {
		from = req.Cursor.Topic
	}
	names := make(map[string]bool)
	if all {
		if err := a.topics.Refresh(ctx); err != nil {
			a.log.Warn("describe topic partitions: refresh topics", "err", err)
		}
		for _, t := range a.topics.List() {
			if t.Name >= from {
				names[t.Name] = true
			}
		}
	} else {
		for _, rt := range req.Topics {
			if rt.Topic >= from {
				names[rt.Topic] = true
			}
		}
	}
	if req.Cursor != nil && (req.Cursor.Partition < 0 || !all && !names[req.Cursor.Topic]) {
		for _, rt := range req.Topics {
			st := kmsg.NewDescribeTopicPartitionsResponseTopic()
			st.Topic = kmsg.StringPtr(rt.Topic)
			st.ErrorCode = kerr.InvalidRequest.Code
			resp.Topics = append(resp.Topics, st)
		}
		return wire.Respond(resp)
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)

	v := a.viewFor(c)
	zone := cluster.ClientZone(c.ClientID())
	remaining := int(max(min(req.ResponsePartitionLimit, maxDescribePartitions), 1))
	var denied []kmsg.DescribeTopicPartitionsResponseTopic
	for _, name := range sorted {
		if !az.topic(metastore.OpDescribe, name) {
			if !all { // do not tell whether it exists
				st := kmsg.NewDescribeTopicPartitionsResponseTopic()
				st.Topic = kmsg.StringPtr(name)
				st.ErrorCode = kerr.TopicAuthorizationFailed.Code
				denied = append(denied, st)
			}
			continue
		}
		if remaining == 0 {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name}
			break
		}
		t, err := a.topics.Get(ctx, name)
		if err != nil {
			if !all {
				st := kmsg.NewDescribeTopicPartitionsResponseTopic()
				st.Topic = kmsg.StringPtr(name)
				st.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if validateTopicName(name) != nil {
					st.ErrorCode = kerr.InvalidTopicException.Code
				}
				resp.Topics = append(resp.Topics, st)
			}
			continue
		}
		start := int32(0)
		if req.Cursor != nil && name == req.Cursor.Topic {
			start = req.Cursor.Partition
		}
		st, next := describeTopicPartitions(v, zone, t, start, remaining)
		st.AuthorizedOperations = az.topicOperations(name)
		resp.Topics = append(resp.Topics, st)
		if next >= 0 {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: next}
			break
		}
		remaining -= len(st.Partitions)
	}
	resp.Topics = append(resp.Topics, denied...)
	return wire.Respond(resp)
}

// describeTopicPartitions describes at most limit of t's partitions from
// start, and returns the partition the next page starts at (-1: none).
func describeTopicPartitions(v *cluster.View, zone string, t *partition.Topic, start int32, limit int) (kmsg.DescribeTopicPartitionsResponseTopic, int32) {
	st := kmsg.NewDescribeTopicPartitionsResponseTopic()
	st.Topic = kmsg.StringPtr(t.Name)
	st.TopicID = t.ID
	next := int32(-1)
	for i := int(max(start, 0)); i < len(t.Partitions); i++ {
		if len(st.Partitions) == limit {
			next = int32(i)
			break
		}
		p := t.Partitions[i]
		leader := v.LeaderFor(p.TP, zone).NodeID
		sp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
		sp.Partition, sp.LeaderID, sp.LeaderEpoch = p.Index, leader, v.LeaderEpoch()
		// The bucket is the replica: one leader, always in sync, no
		// eligible-leader set to speak of.
		sp.Replicas, sp.ISR = []int32{leader}, []int32{leader}
		sp.EligibleLeaderReplicas, sp.LastKnownELR, sp.OfflineReplicas = []int32{}, []int32{}, []int32{}
		st.Partitions = append(st.Partitions, sp)
	}
	return st, next
}
