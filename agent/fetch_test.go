package agent_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/objectstore"
)

// rawFetch sends a Fetch for one partition.
func rawFetch(t *testing.T, cl *kgo.Client, topic string, offset int64, maxWait, minBytes, partMax int32) *kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, minBytes, 50<<20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rt.TopicID = topicID(t, cl, topic) // used from v13, whatever version the client picks
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes = offset, partMax
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if resp.ErrorCode != 0 || resp.SessionID != 0 {
		t.Fatalf("fetch: top-level error %d, session id %d (sessions must be declined)", resp.ErrorCode, resp.SessionID)
	}
	return &resp.Topics[0].Partitions[0]
}

func TestFetchOffsetsAndLimits(t *testing.T) {
	forEachBackend(t, testFetchOffsetsAndLimits)
}

func testFetchOffsetsAndLimits(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t)
	createTopic(t, cl, "f", 1, nil)
	for i := 0; i < 3; i++ { // three batches: offsets 0-1, 2-3, 4-5
		if code := rawProduce(t, cl, "f", 0, batch("a", "b")); code != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(code))
		}
	}
	p := rawFetch(t, cl, "f", 7, 0, 1, 1<<20)
	if p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != 6 {
		t.Fatalf("fetch past the end: error %d hw %d", p.ErrorCode, p.HighWatermark)
	}
	// A fetch from the middle of a batch returns that whole batch first.
	p = rawFetch(t, cl, "f", 3, 0, 1, 1<<20)
	offs := batchBaseOffsets(t, p.RecordBatches)
	if len(offs) != 2 || offs[0] != 2 || offs[1] != 4 {
		t.Fatalf("batches from offset 3: base offsets %v, want [2 4]", offs)
	}
	// A partition limit smaller than one batch still returns one (KIP-74).
	p = rawFetch(t, cl, "f", 0, 0, 1, 10)
	if offs := batchBaseOffsets(t, p.RecordBatches); len(offs) != 1 || offs[0] != 0 {
		t.Fatalf("tiny limit: base offsets %v, want [0]", offs)
	}
	// At the end: nothing, after MaxWaitMs.
	start := time.Now()
	p = rawFetch(t, cl, "f", 6, 300, 1, 1<<20)
	if len(p.RecordBatches) != 0 || p.ErrorCode != 0 || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("fetch at the end: %d bytes, error %d, returned after %v", len(p.RecordBatches), p.ErrorCode, time.Since(start))
	}
}

func topicID(t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	td, err := kadm.NewClient(cl).ListTopics(context.Background(), topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("metadata of %s: %v %v", topic, err, td[topic].Err)
	}
	return td[topic].ID
}

// batchBaseOffsets lists the (patched) base offsets of the batches in b,
// checking each batch's CRC as a client would.
func batchBaseOffsets(t *testing.T, b []byte) []int64 {
	t.Helper()
	var out []int64
	for len(b) > 0 {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatalf("decode batch: %v", err)
		}
		n := int(rb.Length) + 12
		if got := crc32c(b[21:n]); got != uint32(rb.CRC) {
			t.Fatalf("batch at offset %d has a bad CRC", rb.FirstOffset)
		}
		out = append(out, rb.FirstOffset)
		b = b[n:]
	}
	return out
}

func TestLongPollWakesOnCommit(t *testing.T) {
	forEachBackend(t, testLongPollWakesOnCommit)
}

func testLongPollWakesOnCommit(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t)
	createTopic(t, cl, "lp", 1, nil)
	got := make(chan *kmsg.FetchResponseTopicPartition, 1)
	// Answered with data only if the commit wakes it; otherwise empty
	// after MaxWait (a minute).
	go func() { got <- rawFetch(t, cl, "lp", 0, 60_000, 1, 1<<20) }()
	poll.Until(t, "the fetch to park", func() bool { return ta.Stats().FetchesWaiting.Load() == 1 })
	start := time.Now()
	if code := rawProduce(t, cl, "lp", 0, batch("wake")); code != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(code))
	}
	if p := <-got; len(p.RecordBatches) == 0 {
		t.Fatal("long poll returned without data")
	}
	t.Logf("long poll answered %v after the produce", time.Since(start))
}

func TestListOffsetsByTimestamp(t *testing.T) {
	forEachBackend(t, testListOffsetsByTimestamp)
}

func testListOffsetsByTimestamp(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t, kgo.DefaultProduceTopic("ts"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "ts", 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := time.UnixMilli(1_700_000_000_000)
	// Records at base+0s .. base+9s, two per batch, and one old straggler
	// with the largest timestamp in the middle.
	for i := 0; i < 10; i++ {
		ts := base.Add(time.Duration(i) * time.Second)
		if i == 5 {
			ts = base.Add(time.Hour)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}, Timestamp: ts}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	check := func(what string, millis int64, wantOffset int64) {
		t.Helper()
		res, err := adm.ListOffsetsAfterMilli(ctx, millis, "ts")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := res.Lookup("ts", 0)
		if o.Err != nil || o.Offset != wantOffset {
			t.Fatalf("%s: offset %d err %v, want %d", what, o.Offset, o.Err, wantOffset)
		}
	}
	check("before everything", base.UnixMilli()-1, 0)
	check("exact", base.Add(3*time.Second).UnixMilli(), 3)
	check("between", base.Add(3*time.Second).UnixMilli()+1, 4)
	check("the straggler", base.Add(30*time.Minute).UnixMilli(), 5)
	check("after everything", base.Add(2*time.Hour).UnixMilli(), 10) // kadm maps "none" to the end

	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "ts"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -3 // max timestamp
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Topics[0].Partitions[0]; p.Offset != 5 || p.Timestamp != base.Add(time.Hour).UnixMilli() {
		t.Fatalf("max timestamp: offset %d ts %d, want offset 5", p.Offset, p.Timestamp)
	}
}

// flakyBucket fails every Put while down is set: an object-store outage.
type flakyBucket struct {
	objectstore.Bucket
	down  atomic.Bool
	fails atomic.Int64
}

func (f *flakyBucket) Put(ctx context.Context, key string, data []byte) error {
	if f.down.Load() {
		f.fails.Add(1)
		return errors.New("injected: bucket unavailable")
	}
	return f.Bucket.Put(ctx, key, data)
}

// TestBucketOutageIsWaitedOut: while the bucket refuses writes, produce
// requests wait (the agent retries) and nothing crashes; when it returns,
// the waiting records commit and are readable.
func TestBucketOutageIsWaitedOut(t *testing.T) {
	forEachBackend(t, testBucketOutageIsWaitedOut)
}

func testBucketOutageIsWaitedOut(t *testing.T, bk backend) {
	fb := &flakyBucket{}
	ta := startAgentWith(t, bk, nil, func(inner objectstore.Bucket) objectstore.Bucket { fb.Bucket = inner; return fb })
	cl := ta.client(t)
	createTopic(t, cl, "outage", 1, nil)
	fb.down.Store(true)
	done := make(chan int16, 1)
	go func() { done <- rawProduce(t, cl, "outage", 0, batch("during", "outage")) }()
	deadline := time.Now().Add(10 * time.Second)
	for fb.fails.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the agent did not retry the upload")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case code := <-done:
		t.Fatalf("produce answered (%v) while the bucket was down", kerr.ErrorForCode(code))
	default:
	}
	fb.down.Store(false)
	if code := <-done; code != 0 {
		t.Fatalf("produce after the outage: %v", kerr.ErrorForCode(code))
	}
	if p := rawFetch(t, cl, "outage", 0, 0, 1, 1<<20); len(p.RecordBatches) == 0 || p.HighWatermark != 2 {
		t.Fatalf("after the outage: %d bytes, hw %d", len(p.RecordBatches), p.HighWatermark)
	}
}
