package agent_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/cache"
	"github.com/siltstream/silt/internal/testenv"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/postgres"
	"github.com/siltstream/silt/objectstore/mem"
)

// deafStore hides the store's commit notifications: an agent over it
// never hears of other agents' commits, as when its LISTEN connection is
// down or half-open.
type deafStore struct{ metastore.Store }

// startDeafPair starts two agents on one database and bucket; b hears
// nothing of a's commits.
func startDeafPair(t *testing.T) (a, b string) {
	t.Helper()
	dbURL := testenv.Postgres(t).NewDatabase(t)
	if err := postgres.Migrate(context.Background(), dbURL); err != nil {
		t.Fatal(err)
	}
	bucket := mem.New()
	start := func(id string, deaf bool) string {
		store, err := postgres.Open(context.Background(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		var s metastore.Store = store
		if deaf {
			s = deafStore{store}
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := agent.DefaultConfig()
		cfg.ID, cfg.Listen, cfg.FlushInterval, cfg.AutoCreateTopics = id, ln.Addr().String(), 20*time.Millisecond, true
		cb, err := cache.New(bucket, cache.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cb.Stop)
		ag, err := agent.New(cfg, cb, s)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- ag.Serve(ln) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ag.Shutdown(ctx)
			<-done
		})
		return ln.Addr().String()
	}
	return start("agent-a", false), start("agent-b", true)
}

// produceTo sends one batch straight to one agent.
func produceTo(t *testing.T, to kmsg.Requestor, topic string, records []byte) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), to)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(code))
	}
}

// fetchFrom fetches partition 0 from offset straight from one agent.
func fetchFrom(t *testing.T, from kmsg.Requestor, topic string, id [16]byte, offset int64) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id // by id from v13, whatever version is used
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes = offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), from)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

// latestFrom asks one agent for partition 0's latest offset.
func latestFrom(t *testing.T, from kmsg.Requestor, topic string) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), from)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("list offsets: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset
}

// Issue 11, item 6: an agent whose cached high watermark is stale (it
// missed other agents' commits) must not answer OFFSET_OUT_OF_RANGE to a
// fetch for offsets that exist, nor a latest offset behind the store.
func TestStaleHighWatermarkIsReReadNotTrusted(t *testing.T) {
	addrA, addrB := startDeafPair(t)
	clA, clB := pinnedClient(t, addrA), pinnedClient(t, addrB)
	createTopic(t, clA, "stale", 1, nil)
	// Requests straight to each agent's seed connection: no routing by
	// leadership, which could send them to the other agent.
	a, b := clA.SeedBrokers()[0], clB.SeedBrokers()[0]
	id := topicID(t, clA, "stale")
	produceTo(t, a, "stale", batch("x"))
	// b loads the partition (high watermark 1), then a commits more.
	if rp := fetchFrom(t, b, "stale", id, 0); rp.ErrorCode != 0 || rp.HighWatermark != 1 {
		t.Fatalf("fetch via b: error %d, high watermark %d", rp.ErrorCode, rp.HighWatermark)
	}
	for i := 0; i < 3; i++ {
		produceTo(t, a, "stale", batch("y"))
	}
	rp := fetchFrom(t, b, "stale", id, 3)
	if rp.ErrorCode != 0 || rp.HighWatermark != 4 || len(rp.RecordBatches) == 0 {
		t.Fatalf("fetch at 3 via b: error %v, high watermark %d, %d bytes; the store has 4 records",
			kerr.ErrorForCode(rp.ErrorCode), rp.HighWatermark, len(rp.RecordBatches))
	}
	produceTo(t, a, "stale", batch("z"))
	if o := latestFrom(t, b, "stale"); o != 5 {
		t.Fatalf("latest offset via b: %d, the store has 5", o)
	}
}

// pinnedClient is a client seeded with one agent only.
func pinnedClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
