package agent_test

// Client input never makes the agent allocate beyond a configured bound
// (issue 11, item 7). These tests send hostile requests with real clients
// over TCP and check the agent's own accounting of what it built. The bounds
// do not depend on the storage backend, so they run on sqlite-mem only.

import (
	"bytes"
	"context"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
)

// TestFetchMaxBytesCapsResponses asks for a 2 GiB response (MaxBytes and
// PartitionMaxBytes at their largest) from partitions holding more than
// fetch.max.bytes: the response holds at most fetch.max.bytes plus the one
// batch that KIP-74 lets exceed it.
func TestFetchMaxBytesCapsResponses(t *testing.T) {
	t.Parallel()
	const capBytes = 1 << 20
	ta := startAgent(t, sqliteMem, func(c *agent.Config) { c.FetchMaxBytes = capBytes })
	cl := ta.client(t)
	createTopic(t, cl, "big", 2, nil)
	value := string(bytes.Repeat([]byte("x"), 200<<10))
	b := batch(value)
	for p := int32(0); p < 2; p++ {
		for i := 0; i < 8; i++ { // 1.6 MiB per partition, 3.2 MiB in all
			if code := rawProduce(t, cl, "big", p, b); code != 0 {
				t.Fatalf("produce: %v", kerr.ErrorForCode(code))
			}
		}
	}

	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, math.MaxInt32
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "big", topicID(t, cl, "big")
	for p := int32(0); p < 2; p++ {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, math.MaxInt32
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	total := 0
	for _, rp := range resp.Topics[0].Partitions {
		if rp.ErrorCode != 0 {
			t.Fatalf("partition %d: %v", rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
		}
		total += len(rp.RecordBatches)
	}
	if total == 0 {
		t.Fatal("fetch returned nothing")
	}
	if limit := capBytes + len(b); total > limit {
		t.Fatalf("a fetch asking for 2 GiB got %d bytes of batches, want at most fetch.max.bytes + one batch = %d", total, limit)
	}
	if got := ta.Stats().FetchedBytes.Load(); got != int64(total) {
		t.Fatalf("agent counted %d fetched bytes, the response held %d", got, total)
	}

	// A consumer with default settings still reads everything.
	cons := ta.client(t, kgo.ConsumeTopics("big"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	n := 0
	for n < 16 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		n += fs.NumRecords()
	}
}
