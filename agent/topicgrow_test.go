package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
)

// TestGrownTopicInNextMetadataOfAnotherAgent: partitions added through one
// agent are in the very next Metadata answer of another agent that had the
// topic cached, as with Kafka, not only after that agent's periodic topic
// refresh (five heartbeats, 10 s by default). kafkajs'
// admin.createPartitions followed by fetchTopicMetadata, sent to another
// agent, read the old partition count.
func TestGrownTopicInNextMetadataOfAnotherAgent(t *testing.T) {
	t.Parallel()
	s := postgresMinIO.newStorage(t)
	var addrs []string
	for _, id := range []string{"agent-a", "agent-b"} {
		ta := startAgentOn(t, s.openStore(t), s.bucket, func(c *agent.Config) {
			c.ID = id
			// The default heartbeat: no periodic topic refresh (every 10 s)
			// during the test.
			c.Heartbeat = 2 * time.Second
			c.MembershipTTL = 5 * time.Second
		})
		addrs = append(addrs, ta.addr)
	}
	a := pinnedClient(t, addrs[0]).SeedBrokers()[0]
	b := pinnedClient(t, addrs[1]).SeedBrokers()[0]

	partitionsAt := func(at kmsg.Requestor) int {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("grow")
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(context.Background(), at)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].ErrorCode; code != 0 {
			t.Fatalf("metadata of grow: %v", kerr.ErrorForCode(code))
		}
		return len(resp.Topics[0].Partitions)
	}

	createTopicAt(t, a, "grow")
	if n := partitionsAt(b); n != 1 { // b caches the topic
		t.Fatalf("b lists %d partitions of the new topic, want 1", n)
	}
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = "grow", 4
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp, err := req.RequestWith(context.Background(), a)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create partitions through a: %v %v", err, kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	if n := partitionsAt(a); n != 4 {
		t.Fatalf("a lists %d partitions after growing the topic to 4", n)
	}
	if n := partitionsAt(b); n != 4 {
		t.Fatalf("b lists %d partitions after a grew the topic to 4", n)
	}

	// A client seeded with b alone can produce to a new partition at once.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs[1]), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "grow", Partition: 3, Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce to partition 3 through b: %v", err)
	}
}
