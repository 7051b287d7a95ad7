package agent_test

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/objectstore"
)

// Issue 11, item 10: a produce held back by a full write buffer has already
// waited when it is answered. From Produce v6 (KIP-219) clients back off
// by the reported throttle_time_ms themselves, so reporting the wait makes
// them wait twice: it must be 0.
func TestThrottledProduceIsNotThrottledTwice(t *testing.T) {
	forEachBackend(t, testThrottledProduceIsNotThrottledTwice)
}

func testThrottledProduceIsNotThrottledTwice(t *testing.T, bk backend) {
	fb := &flakyBucket{}
	ta := startAgentWith(t, bk, func(c *agent.Config) { c.FlushBytes, c.BufferBytes = 1024, 4096 },
		func(inner objectstore.Bucket) objectstore.Bucket { fb.Bucket = inner; return fb })
	cl := ta.client(t)
	createTopic(t, cl, "throttled", 1, nil)
	big := batch(strings.Repeat("x", 1400)) // more than half of the 2048 bytes batches may use
	fb.down.Store(true)
	produce := func() <-chan *kmsg.ProduceResponse {
		out := make(chan *kmsg.ProduceResponse, 1)
		go func() {
			req := kmsg.NewPtrProduceRequest()
			req.Acks, req.TimeoutMillis = -1, 30000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = "throttled"
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = big
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(context.Background(), cl)
			if err != nil {
				t.Error(err)
			}
			out <- resp
		}()
		return out
	}
	first := produce()
	poll.Until(t, "the first upload to be retried", func() bool { return fb.fails.Load() > 0 })
	second := produce()
	poll.Until(t, "the second produce to wait for buffer room", func() bool { return ta.ProducesWaiting() == 1 })
	fb.down.Store(false)
	for i, ch := range []<-chan *kmsg.ProduceResponse{first, second} {
		resp := <-ch
		if resp == nil {
			t.Fatalf("produce %d failed", i+1)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce %d: error %d", i+1, code)
		}
		if resp.Version >= 6 && resp.ThrottleMillis != 0 {
			t.Fatalf("produce %d (v%d): throttle_time_ms %d after the agent already held it", i+1, resp.Version, resp.ThrottleMillis)
		}
	}
}
