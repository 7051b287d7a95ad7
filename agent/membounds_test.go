package agent_test

// Client input never makes the agent allocate beyond a configured bound
// (issue 11, item 7). These tests send hostile requests with real clients
// over TCP and check the agent's own accounting of what it built. The bounds
// do not depend on the storage backend, so they run on sqlite-mem only.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
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

// TestListOffsetsSurvivesZstdBomb produces a batch of a few hundred
// kilobytes whose zstd records expand to 1 GiB, then asks ListOffsets for a
// timestamp, which makes the agent search that batch's records. The answer
// comes back (the batch's first offset) and the agent allocates a small
// fraction of the bomb. Not parallel: it measures the process's allocations.
func TestListOffsetsSurvivesZstdBomb(t *testing.T) {
	ta := startAgent(t, sqliteMem, nil)
	cl := ta.client(t)
	createTopic(t, cl, "bomb", 1, nil)
	if code := rawProduce(t, cl, "bomb", 0, batch("before")); code != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(code))
	}
	const expands = 1 << 30
	bombTS := time.Now().Add(time.Hour).UnixMilli()
	b := zstdBomb(t, expands, bombTS)
	if code := rawProduce(t, cl, "bomb", 0, b); code != 0 {
		t.Fatalf("produce the bomb (%d bytes): %v", len(b), kerr.ErrorForCode(code))
	}

	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "bomb"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = bombTS // only the bomb's header claims it
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp, err := req.RequestWith(ctx, cl)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.Offset != 1 {
		t.Fatalf("list offsets by timestamp: offset %d error %v, want the bomb's offset 1", p.Offset, kerr.ErrorForCode(p.ErrorCode))
	}
	got := after.TotalAlloc - before.TotalAlloc
	if got > 128<<20 {
		t.Fatalf("answering one ListOffsets over a %d-byte batch allocated %d MiB", len(b), got>>20)
	}
	t.Logf("one ListOffsets over a %d-byte zstd bomb of %d MiB allocated %.1f MiB", len(b), expands>>20, float64(got)/(1<<20))
	if code := rawProduce(t, cl, "bomb", 0, batch("after")); code != 0 {
		t.Fatalf("produce after the bomb: %v", kerr.ErrorForCode(code))
	}
}

// zstdBomb is a valid v2 batch, one record claimed, dated ts, whose
// zstd-compressed records are n zero bytes.
func zstdBomb(t *testing.T, n, ts int64) []byte {
	t.Helper()
	var comp bytes.Buffer
	zw, err := zstd.NewWriter(&comp, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(zw, zeroReader{}, n); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	b := append(batch("x")[:61], comp.Bytes()...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12)) // batch length
	binary.BigEndian.PutUint16(b[21:], 4)                // attributes: zstd
	binary.BigEndian.PutUint64(b[27:], uint64(ts))       // first timestamp
	binary.BigEndian.PutUint64(b[35:], uint64(ts))       // max timestamp
	binary.BigEndian.PutUint32(b[17:], crc32c(b[21:]))
	return b
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestProduceUnderBothBudgets: a produce holds its frame's share of
// queued.max.request.bytes while it waits for room in buffer.bytes, and
// until it is committed. Both budgets far smaller than what producers send
// at once must still let every record through: the buffer drains by
// committing, which needs no request budget.
func TestProduceUnderBothBudgets(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, func(c *agent.Config) {
		c.FlushBytes = 64 << 10
		c.BufferBytes = 192 << 10
		c.Wire.MaxInflightRequestBytes = 160 << 10
	})
	createTopic(t, ta.client(t), "both", 2, nil)
	const producers, perProducer = 4, 30
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range producers {
		cl := ta.client(t, kgo.DefaultProduceTopic("both"), kgo.ProducerBatchMaxBytes(60<<10))
		for j := range perProducer {
			wg.Add(1)
			r := &kgo.Record{Value: bytes.Repeat([]byte{byte(i)}, 40<<10), Key: []byte{byte(j)}}
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err != nil && failed.Add(1) == 1 {
					t.Errorf("produce: %v", err)
				}
			})
		}
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	var total int64
	for _, end := range listEnds(t, ta.client(t), "both") {
		total += end
	}
	if total != producers*perProducer {
		t.Fatalf("%d records stored, want %d", total, producers*perProducer)
	}
}

// TestHugeArrayClaimsRefused sends 100 MiB requests (max.request.bytes)
// over TCP whose arrays claim a struct per byte: a Fetch whose topic and
// partition arrays claim every byte left, and a Produce of 17 million empty
// topics. kmsg would allocate gigabytes decoding them; the agent closes
// each connection having allocated little beyond the frame it read, and
// keeps serving. Not parallel: it measures the process's allocations.
func TestHugeArrayClaimsRefused(t *testing.T) {
	ta := startAgent(t, sqliteMem, nil)
	cl := ta.client(t)
	createTopic(t, cl, "claims", 1, nil)
	const size = 100 << 20

	header := func(key, version int16) []byte {
		b := binary.BigEndian.AppendUint32(nil, size)
		b = binary.BigEndian.AppendUint16(b, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 1) // correlation id
		return binary.BigEndian.AppendUint16(b, 0)
	}
	fetch := header(int16(kmsg.Fetch), 11)
	fetch = append(fetch, make([]byte, 25)...)                                // replica … session epoch
	fetch = binary.BigEndian.AppendUint32(fetch, uint32(size+4-len(fetch)-4)) // topics: every byte left
	fetch = binary.BigEndian.AppendUint16(fetch, 0)
	fetch = binary.BigEndian.AppendUint32(fetch, uint32(size+4-len(fetch)-4)) // partitions: every byte left
	fetch = append(fetch, make([]byte, size+4-len(fetch))...)

	produce := header(int16(kmsg.Produce), 7)
	produce = append(produce, 0xff, 0xff, 0, 1, 0, 0, 0x27, 0x10) // null txn id, acks, timeout
	n := (size + 4 - len(produce) - 4) / 6
	produce = binary.BigEndian.AppendUint32(produce, uint32(n))
	produce = append(produce, make([]byte, size+4-len(produce))...) // n × (empty name, no partitions), padding

	for _, c := range []struct {
		name  string
		frame []byte
		limit uint64
	}{
		{"fetch", fetch, 16 << 20},            // refused before its body is read
		{"produce", produce, 3*size + 16<<20}, // its body is read (growing), then refused
	} {
		nc, err := net.Dial("tcp", ta.addr)
		if err != nil {
			t.Fatal(err)
		}
		allocated := measureAlloc(func() {
			_, _ = nc.Write(c.frame) // the agent may close before reading it all
			// Only against a hang: walking a 100 MiB body under the race
			// detector on a busy machine takes tens of seconds.
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Minute))
			if k, err := nc.Read(make([]byte, 1)); k != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("%s: read %d bytes, err %v; want the connection closed", c.name, k, err)
			}
		})
		nc.Close()
		t.Logf("a %d MiB %s claiming huge arrays: the agent allocated %d MiB", size>>20, c.name, allocated>>20)
		if allocated > c.limit {
			t.Errorf("a %d MiB %s claiming huge arrays: the agent allocated %d MiB", size>>20, c.name, allocated>>20)
		}
	}
	if code := rawProduce(t, cl, "claims", 0, batch("still up")); code != 0 {
		t.Fatalf("produce after hostile requests: %v", kerr.ErrorForCode(code))
	}
}

func measureAlloc(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
