package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/objectstore"
)

// pairWait is how long pairingBucket holds the first Get for a second one
// before it gives up and lets it go on alone: only a failing test waits
// that long.
const pairWait = 8 * time.Second

// pairingBucket holds the first Get made through it until a second Get is
// in flight, so a test can tell reads that overlap from reads made one
// after another: without a second Get within pairWait, the first goes on
// alone and the bucket remembers it. It counts the Gets.
type pairingBucket struct {
	objectstore.Bucket
	gets   atomic.Int64
	mu     sync.Mutex
	state  int           // 0: no Get yet; 1: the first held; 2: paired; 3: the first went alone
	second chan struct{} // closed when a second Get arrives while the first is held
}

func newPairingBucket(b objectstore.Bucket) *pairingBucket {
	return &pairingBucket{Bucket: b, second: make(chan struct{})}
}

func (b *pairingBucket) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	b.gets.Add(1)
	b.mu.Lock()
	switch b.state {
	case 0:
		b.state = 1
		b.mu.Unlock()
		timer := time.NewTimer(pairWait)
		select {
		case <-b.second:
		case <-timer.C:
			b.mu.Lock()
			b.state = 3
			b.mu.Unlock()
		case <-ctx.Done():
		}
		timer.Stop()
	case 1:
		b.state = 2
		close(b.second)
		b.mu.Unlock()
	default:
		b.mu.Unlock()
	}
	return b.Bucket.Get(ctx, key, off, length)
}

func (b *pairingBucket) paired() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == 2
}

// fetchAll sends r one Fetch for partitions 0..parts-1 of topic (whose id
// is id) from offset 0, each up to partMax bytes, the response up to
// maxBytes.
func fetchAll(t *testing.T, r kmsg.Requestor, topic string, id [16]byte, parts int32, partMax, maxBytes int32) *kmsg.FetchResponseTopic {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, maxBytes
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rt.TopicID = id
	for p := range parts {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, partMax
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 2*pairWait)
	defer cancel()
	resp, err := req.RequestWith(ctx, r)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != int(parts) {
		t.Fatalf("fetch: error %d, %d topics", resp.ErrorCode, len(resp.Topics))
	}
	return &resp.Topics[0]
}

// A fetch of partitions whose data the agent has never read loads them
// from the bucket together: the GETs of different partitions are in flight
// at once, not made one after another, and every partition gets its
// records. A fetch with room for one partition's records loads no other.
func TestColdFetchOverlapsPartitionReads(t *testing.T) {
	forEachBackend(t, testColdFetchOverlapsPartitionReads)
}

func testColdFetchOverlapsPartitionReads(t *testing.T, bk backend) {
	const parts = 6
	s := bk.newStorage(t)
	writer := startAgentOn(t, s.openStore(t), s.bucket, func(c *agent.Config) { quietJobs(c); c.ID = "agent-w" })
	cl := writer.client(t)
	for _, topic := range []string{"cold", "narrow"} {
		createTopic(t, cl, topic, parts, nil)
		for p := range int32(parts) {
			// acks=all: one flush, so one object, per partition.
			if code := rawProduce(t, cl, topic, p, batch(fmt.Sprintf("%s-%d", topic, p))); code != 0 {
				t.Fatalf("produce to %s/%d: error %d", topic, p, code)
			}
		}
	}

	gate := newPairingBucket(s.bucket)
	reader := startAgentOn(t, s.openStore(t), gate, func(c *agent.Config) { quietJobs(c); c.ID = "agent-r" })
	// One broker, not a client: a client's Fetch may go to either agent.
	rb := pinnedClient(t, reader.addr).SeedBrokers()[0]
	rt := fetchAll(t, rb, "cold", topicID(t, cl, "cold"), parts, 1<<20, 50<<20)
	if !gate.paired() {
		t.Errorf("the cold reads of one fetch's %d partitions went to the bucket one at a time", parts)
	}
	for _, rp := range rt.Partitions {
		if rp.ErrorCode != 0 {
			t.Fatalf("partition %d: error %d", rp.Partition, rp.ErrorCode)
		}
		offs := batchBaseOffsets(t, rp.RecordBatches)
		if len(offs) != 1 || offs[0] != 0 || !bytes.Contains(rp.RecordBatches, []byte(fmt.Sprintf("cold-%d", rp.Partition))) {
			t.Errorf("partition %d: batches at %v, not its record", rp.Partition, offs)
		}
	}

	// Room for one batch (KIP-74's first): the other partitions' objects
	// are not loaded for a read that will not happen.
	before := gate.gets.Load()
	rt = fetchAll(t, rb, "narrow", topicID(t, cl, "narrow"), parts, 1<<20, 1)
	n := 0
	for _, rp := range rt.Partitions {
		if len(rp.RecordBatches) > 0 {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("fetch of 1 byte: records from %d partitions, want 1", n)
	}
	if gets := gate.gets.Load() - before; gets != 1 {
		t.Errorf("fetch of 1 byte: %d GETs, want 1 (the partition it returns)", gets)
	}
}
