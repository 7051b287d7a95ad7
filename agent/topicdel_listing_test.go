package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataOf asks one agent for one topic at version v, with auto-creation
// as allowed (v4+; v1–v3 always allow it).
func metadataOf(t *testing.T, addr, topic string, v int16, autoCreate bool) kmsg.MetadataResponseTopic {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(v)
	req.AllowAutoTopicCreation = autoCreate
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrMetadataResponse()
	resp.SetVersion(v)
	rawRequest(t, addr, req, resp)
	return resp.Topics[0]
}

// TestDeletedTopicIsNotListed: once DeleteTopics has answered, no agent —
// neither the one that deleted the topic nor another that had it cached —
// lists it with partitions. A Metadata request that re-creates it (auto
// creation) is answered LEADER_NOT_AVAILABLE without partitions, as Kafka
// answers the request that auto-creates a topic; the next one lists the new
// topic.
func TestDeletedTopicIsNotListed(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, "", "")
	a, b := agents[0].addr, agents[1].addr
	clA := pinnedClient(t, a)
	createTopicAt(t, clA, "gone")
	for _, addr := range []string{a, b} { // both agents cache it
		if got := metadataOf(t, addr, "gone", 12, false); got.ErrorCode != 0 || len(got.Partitions) != 1 {
			t.Fatalf("metadata via %s before the delete: %v, %d partitions", addr, kerr.ErrorForCode(got.ErrorCode), len(got.Partitions))
		}
	}
	deleteTopicAt(t, clA, "gone")
	for _, addr := range []string{b, a} {
		if got := metadataOf(t, addr, "gone", 12, false); got.ErrorCode != kerr.UnknownTopicOrPartition.Code || len(got.Partitions) != 0 {
			t.Fatalf("metadata via %s right after the delete: %v, %d partitions", addr, kerr.ErrorForCode(got.ErrorCode), len(got.Partitions))
		}
	}
	// v1 always allows auto-creation (kafka-go's Conn.ReadPartitions).
	if got := metadataOf(t, b, "gone", 1, true); got.ErrorCode != kerr.LeaderNotAvailable.Code || len(got.Partitions) != 0 {
		t.Fatalf("auto-creating metadata via b after the delete: %v, %d partitions", kerr.ErrorForCode(got.ErrorCode), len(got.Partitions))
	}
	for _, addr := range []string{a, b} {
		if got := metadataOf(t, addr, "gone", 12, false); got.ErrorCode != 0 || len(got.Partitions) != 1 {
			t.Fatalf("metadata via %s after the re-create: %v, %d partitions", addr, kerr.ErrorForCode(got.ErrorCode), len(got.Partitions))
		}
	}
}

// TestDeleteTopicsThenReadPartitions is kafka-go's testDeleteTopics on one
// agent: right after DeleteTopics, Metadata v1 (which auto-creates) lists
// no partitions.
func TestDeleteTopicsThenReadPartitions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ta := startAgent(t, bk, nil)
		cl := ta.client(t)
		createTopic(t, cl, "t1", 1, nil)
		createTopic(t, cl, "t2", 1, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := kadm.NewClient(cl).DeleteTopics(ctx, "t1", "t2")
		if err != nil || resp.Error() != nil {
			t.Fatalf("delete: %v %v", err, resp.Error())
		}
		for _, name := range []string{"t1", "t2"} {
			if got := metadataOf(t, ta.addr, name, 1, true); len(got.Partitions) != 0 {
				t.Fatalf("%s right after the delete: %v with %d partitions", name, kerr.ErrorForCode(got.ErrorCode), len(got.Partitions))
			}
		}
	})
}
