package partition_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/ingest"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/sqlite"
	"github.com/siltstream/silt/objectstore/mem"
	"github.com/siltstream/silt/partition"
	"github.com/siltstream/silt/segment"
)

// recordBatch encodes a valid v2 batch of n records from producer pid
// (-1: not idempotent), transactional or not.
func recordBatch(n int, pid int64, seq int32, transactional bool) []byte {
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: 1000, MaxTimestamp: 1000,
		ProducerID: pid, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n),
	}
	if pid >= 0 {
		rb.ProducerEpoch, rb.FirstSequence = 0, seq
	}
	if transactional {
		rb.Attributes |= 0x10
	}
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(fmt.Sprint("v", i))}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		rb.Records = r.AppendTo(rb.Records)
	}
	raw := rb.AppendTo(nil)
	rb.Length = int32(len(raw) - 12)
	raw = rb.AppendTo(nil)
	rb.CRC = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return rb.AppendTo(nil)
}

type env struct {
	store  *sqlite.Store
	bucket *mem.Bucket
	topics *partition.Topics
	stats  *partition.ReadStats
	reader *partition.Reader
	pipe   *ingest.Pipeline
	topic  *partition.Topic
}

// newEnv is one agent's read side fed by its own write pipeline, over
// SQLite and an in-memory bucket: the wiring the agent uses.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, bucket: mem.New(), stats: &partition.ReadStats{}}
	e.topics = partition.NewTopics(st)
	e.reader = partition.NewReader(st, e.bucket, e.stats)
	e.pipe, err = ingest.New(ingest.Config{AgentID: "a", FlushInterval: time.Millisecond, FlushBytes: 1 << 20, BufferBytes: 4 << 20, MaxUploads: 2}, e.bucket, st, e.topics, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); e.pipe.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if e.topic, err = e.topics.Get(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) produce(t *testing.T, data []byte) int64 {
	t.Helper()
	_, _, hdr, err := segment.NextBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	p := e.topic.Partition(0)
	pd, _, err := e.pipe.Submit(context.Background(), []ingest.Batch{{TP: p.TP, TopicName: "t", Data: data, Header: hdr}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pd.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := pd.Results()[0]
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	return r.BaseOffset
}

// baseOffsets lists the base offsets of the batches in b.
func baseOffsets(t *testing.T, b []byte) []int64 {
	t.Helper()
	var out []int64
	for it := segment.NewBatchIter(b); it.Next(); {
		out = append(out, int64(binary.BigEndian.Uint64(it.Batch())))
	}
	return out
}

// The agent's own commits move the high watermark, wake long polls, and
// are read back from the in-memory tail with real offsets and no store
// query.
func TestOwnCommitsAreServedFromTheTail(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := e.topic.Partition(0)
	if err := e.topics.Load(ctx, p); err != nil {
		t.Fatal(err)
	}
	wake := make(chan struct{}, 1)
	p.Watch(wake)
	defer p.Unwatch(wake)
	for i, n := range []int{3, 1, 2} {
		e.produce(t, recordBatch(n, -1, 0, false))
		if i == 0 {
			select {
			case <-wake:
			default:
				t.Fatal("a commit did not wake the partition's watcher")
			}
		}
	}
	if hw, start := p.Offsets(); hw != 6 || start != 0 {
		t.Fatalf("offsets: high watermark %d, log start %d; want 6, 0", hw, start)
	}
	data, err := e.reader.Read(ctx, p, 4, 6, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := baseOffsets(t, data); len(got) != 1 || got[0] != 4 {
		t.Fatalf("read from 4: batches at %v, want [4]", got)
	}
	data, err = e.reader.Read(ctx, p, 1, 6, 1<<20, true) // mid-batch: the whole batch
	if err != nil {
		t.Fatal(err)
	}
	if got := baseOffsets(t, data); fmt.Sprint(got) != "[0 3 4]" {
		t.Fatalf("read from 1: batches at %v, want [0 3 4]", got)
	}
	if q, h := e.stats.IndexQueries.Load(), e.stats.IndexCacheHits.Load(); q != 0 || h == 0 {
		t.Fatalf("%d index queries and %d memory hits; want none and some", q, h)
	}
}

// Another agent's cache knows nothing until it loads: it reads offsets and
// index rows from the store, and keeps a window of rows for the next reads.
func TestColdReadGoesToTheStoreOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		e.produce(t, recordBatch(2, -1, 0, false))
	}
	other := partition.NewTopics(e.store)
	stats := &partition.ReadStats{}
	reader := partition.NewReader(e.store, e.bucket, stats)
	topic, err := other.Get(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	p := topic.Partition(0)
	if err := other.Load(ctx, p); err != nil {
		t.Fatal(err)
	}
	if hw, _ := p.Offsets(); hw != 10 {
		t.Fatalf("loaded high watermark %d, want 10", hw)
	}
	for off := int64(0); off < 10; off += 2 {
		data, err := reader.Read(ctx, p, off, 10, 1, true) // one batch per read
		if err != nil {
			t.Fatal(err)
		}
		if got := baseOffsets(t, data); len(got) != 1 || got[0] != off {
			t.Fatalf("read from %d: batches at %v", off, got)
		}
	}
	if q := stats.IndexQueries.Load(); q != 1 {
		t.Fatalf("%d index queries for a sequential read of 5 rows; want 1 (then the window)", q)
	}
}

// The last stable offset stops at an open transaction and moves past it
// when its marker commits; read_committed reads re-read it only after a
// transactional commit.
func TestStableOffsetFollowsTransactions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := e.topic.Partition(0)
	e.produce(t, recordBatch(2, -1, 0, false))
	if lso, err := e.topics.StableOffset(ctx, p); err != nil || lso != 2 {
		t.Fatalf("no transaction: LSO %d (%v), want the high watermark 2", lso, err)
	}
	first := e.produce(t, recordBatch(3, 42, 0, true))
	e.produce(t, recordBatch(1, -1, 0, false))
	lso, err := e.topics.StableOffset(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if hw, _ := p.Offsets(); lso != first || hw != 6 {
		t.Fatalf("open transaction at %d: LSO %d, high watermark %d; want %d, 6", first, lso, hw, first)
	}
	if got := p.CachedLSO(); got != first {
		t.Fatalf("cached LSO %d after a non-transactional commit, want it to stay %d", got, first)
	}
	// The coordinator saves PrepareCommit before it writes the marker; the
	// store refuses markers of transactions that are not ending.
	if err := e.store.PutTxn(ctx, metastore.Txn{TransactionalID: "tx", ProducerID: 42, State: metastore.TxnPrepareCommit, TimeoutMs: 60000}, nil); err != nil {
		t.Fatal(err)
	}
	marker := segment.ControlBatch(42, 0, true, 0, 1000)
	e.produce(t, marker)
	if lso, err := e.topics.StableOffset(ctx, p); err != nil || lso != 7 {
		t.Fatalf("after the commit marker: LSO %d (%v), want the high watermark 7", lso, err)
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
