package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// record values are 1 KiB: an 8-byte sequence number (per partition),
// then filler derived from it, so a reader can check every byte.
const valueSize = 1024

func makeValue(partition int32, seq uint64) []byte {
	v := make([]byte, valueSize)
	binary.BigEndian.PutUint64(v, seq)
	for i := 8; i < valueSize; i++ {
		v[i] = byte(uint64(i)*31 + seq + uint64(partition))
	}
	return v
}

func checkValue(partition int32, v []byte) (uint64, error) {
	if len(v) != valueSize {
		return 0, fmt.Errorf("value of %d bytes, want %d", len(v), valueSize)
	}
	seq := binary.BigEndian.Uint64(v)
	want := makeValue(partition, seq)
	for i := range v {
		if v[i] != want[i] {
			return seq, fmt.Errorf("value of seq %d differs at byte %d", seq, i)
		}
	}
	return seq, nil
}

// acked tracks which (partition, seq) a producer had acknowledged.
type acked struct {
	mu   sync.Mutex
	seqs map[int32]map[uint64]bool
	n    atomic.Int64
}

func (a *acked) add(p int32, seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seqs == nil {
		a.seqs = make(map[int32]map[uint64]bool)
	}
	if a.seqs[p] == nil {
		a.seqs[p] = make(map[uint64]bool)
	}
	a.seqs[p][seq] = true
	a.n.Add(1)
}

// produceLoad writes n records of 1 KiB round-robin over partitions with
// acks=all, stopping early when ctx ends. Errors are counted, not fatal:
// under SIGKILL some produce requests fail, and only acks count.
func produceLoad(ctx context.Context, addr string, topic string, partitions int32, n int, ack *acked) (failed int64) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(), // idempotent dedup is issue 5; retries here may duplicate
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.ProducerBatchMaxBytes(1<<20),
	)
	if err != nil {
		return int64(n)
	}
	defer cl.Close()
	var fails atomic.Int64
	var wg sync.WaitGroup
	next := make([]uint64, partitions)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		p := int32(i) % partitions
		seq := next[p]
		next[p]++
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Partition: p, Value: makeValue(p, seq)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				fails.Add(1)
				return
			}
			ack.add(p, seq)
		})
	}
	wg.Wait()
	return fails.Load()
}

// consumeAll reads every partition of topic from the start to its current
// end and returns the sequence numbers seen per partition, in offset order.
func consumeAll(t *testing.T, addr, topic string) map[int32][]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	want := make(map[int32]int64)
	var total int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %d: %v", o.Partition, o.Err)
		}
		want[o.Partition] = o.Offset
		total += o.Offset
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(32<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := make(map[int32][]uint64)
	var got int64
	for got < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before timeout", got, total)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= want[r.Partition] {
				return
			}
			if int64(len(out[r.Partition])) != r.Offset {
				t.Fatalf("partition %d: got offset %d, want %d (a gap or a repeat)", r.Partition, r.Offset, len(out[r.Partition]))
			}
			seq, err := checkValue(r.Partition, r.Value)
			if err != nil {
				t.Fatalf("partition %d offset %d: %v", r.Partition, r.Offset, err)
			}
			out[r.Partition] = append(out[r.Partition], seq)
			got++
		})
	}
	return out
}

// checkAllAcked fails unless every acknowledged record was read.
func checkAllAcked(t *testing.T, ack *acked, read map[int32][]uint64) {
	t.Helper()
	ack.mu.Lock()
	defer ack.mu.Unlock()
	missing := 0
	for p, seqs := range ack.seqs {
		seen := make(map[uint64]bool, len(read[p]))
		for _, s := range read[p] {
			seen[s] = true
		}
		for s := range seqs {
			if !seen[s] {
				if missing < 5 {
					t.Errorf("partition %d: acknowledged seq %d was not read back", p, s)
				}
				missing++
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d acknowledged records lost", missing)
	}
}

// checkInOrder fails unless each partition holds exactly 0..n-1 in order.
func checkInOrder(t *testing.T, read map[int32][]uint64, partitions int32, perPartition int) {
	t.Helper()
	for p := int32(0); p < partitions; p++ {
		if len(read[p]) != perPartition {
			t.Fatalf("partition %d: read %d records, want %d", p, len(read[p]), perPartition)
		}
		for i, s := range read[p] {
			if s != uint64(i) {
				t.Fatalf("partition %d offset %d: seq %d, want %d", p, i, s, i)
			}
		}
	}
}

func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
}
