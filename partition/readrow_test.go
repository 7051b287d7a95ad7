package partition_test

import (
	"bytes"
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/siltstream/silt/cache"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/partition"
	"github.com/siltstream/silt/segment"
)

// countingGetter counts the reads that reach the bucket and their sizes.
type countingGetter struct {
	next partition.Getter
	mu   sync.Mutex
	gets []int64
}

func (c *countingGetter) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	b, err := c.next.Get(ctx, key, off, length)
	c.mu.Lock()
	c.gets = append(c.gets, int64(len(b)))
	c.mu.Unlock()
	return b, err
}

func (c *countingGetter) take() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.gets
	c.gets = nil
	return g
}

// A large row (a compacted segment's is tens of MiB) is read in pieces of
// what the fetch can return, not whole; a consumer reading on starts where
// its last read stopped, in one read of the bucket; a read from the middle
// of the row with nothing remembered walks the headers and returns the
// right batch.
func TestLargeRowReadInPieces(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const (
		batches   = 48
		valueSize = 64 << 10
	)
	want, c := putLargeRow(t, e, "big.seg", batches, valueSize)

	read := func(reader *partition.Reader, p *partition.Partition, off int64) []byte {
		t.Helper()
		data, err := reader.Read(ctx, p, off, 2*batches, 1, true) // one batch per read
		if err != nil {
			t.Fatal(err)
		}
		got := baseOffsets(t, data)
		if len(got) != 1 || got[0] != off/2*2 {
			t.Fatalf("read from %d: batches at %v, want one at %d", off, got, off/2*2)
		}
		if body, wb := data[segment.BatchHeaderSize:], want[off/2][segment.BatchHeaderSize:]; !bytes.Equal(body, wb) {
			t.Fatalf("read from %d: batch body differs", off)
		}
		return data
	}
	newReader := func() (*partition.Reader, *partition.Partition, *countingGetter) {
		other := partition.NewTopics(e.store)
		top, err := other.Get(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		p := top.Partition(0)
		if err := other.Load(ctx, p); err != nil {
			t.Fatal(err)
		}
		g := &countingGetter{next: e.bucket}
		return partition.NewReader(e.store, g, &partition.ReadStats{}), p, g
	}

	reader, p, g := newReader()
	for off := int64(0); off < 2*batches; off += 2 {
		read(reader, p, off)
		gets := g.take()
		if len(gets) != 1 || gets[0] > 1<<20+valueSize {
			t.Fatalf("read from %d: bucket reads of %v bytes; want one, at most a read step, in a row of %d", off, gets, c.Length)
		}
	}
	// From the middle, on a reader that remembers nothing: the right batch.
	reader, p, _ = newReader()
	read(reader, p, 61)
}

// putLargeRow writes one object, key, holding one row of partition 0 of
// "t": batches batches of two records, the first of valueSize bytes, and
// commits it. It returns the batches and the row's chunk.
func putLargeRow(t *testing.T, e *env, key string, batches, valueSize int) ([][]byte, segment.ChunkInfo) {
	t.Helper()
	ctx := context.Background()
	w := segment.NewWriter()
	topic, err := e.store.Topic(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for i := range batches {
		b := segment.BuildBatch(0, []segment.Record{{TimestampMs: 1000, Value: bytes.Repeat([]byte{byte(i)}, valueSize)}, {OffsetDelta: 1, TimestampMs: 1000}})
		h, err := segment.ValidateBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		w.Append(segment.TopicRef{ID: topic.ID, Name: "t"}, b, h)
		want = append(want, b)
	}
	obj, chunks := w.Finish()
	if err := e.store.RecordUpload(ctx, key, "a"); err != nil {
		t.Fatal(err)
	}
	if err := e.bucket.Put(ctx, key, obj); err != nil {
		t.Fatal(err)
	}
	c := chunks[0]
	if _, err := e.store.CommitFlush(ctx, metastore.Flush{SegmentKey: key, AgentID: "a", Size: int64(len(obj)), Chunks: []metastore.Chunk{{
		TopicPartition: metastore.TopicPartition{Topic: topic.ID}, Position: c.Position, Length: c.Length,
		OffsetCount: c.OffsetCount, BatchCount: c.BatchCount, MinTimestamp: c.MinTimestamp, MaxTimestamp: c.MaxTimestamp,
	}}}); err != nil {
		t.Fatal(err)
	}

	return want, c
}

// A row of a cleaned segment (keyed compaction) has gaps: batches removed
// between others and at its end. Reads take each batch's offset from the
// batch, return the batch holding or following the offset asked for, and
// go on past a gap at the row's end to the next row.
func TestCleanedRowWithGaps(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rec := func(d int32, v string) segment.Record {
		return segment.Record{OffsetDelta: d, TimestampMs: 1000, Key: []byte("k"), Value: []byte(v)}
	}
	// Four write-path batches of two records each: offsets 0-7.
	for i := 0; i < 4; i++ {
		e.produce(t, segment.BuildBatch(0, []segment.Record{rec(0, "a"), rec(1, "b")}))
	}
	e.produce(t, segment.BuildBatch(0, []segment.Record{rec(0, "after")})) // offset 8, its own row
	old, err := e.store.Index(ctx, e.topic.Partition(0).TP, 0, 1<<40, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(old) != 5 {
		t.Fatalf("%d rows, want one per produce", len(old))
	}
	// Cleaned: the batch at 0 keeps offset 1 only, the batches at 2 and 6
	// are gone, the one at 4 stays whole; the row still covers 0-7.
	cleaned := [][]byte{
		segment.BuildBatch(0, []segment.Record{rec(1, "b")}),
		segment.BuildBatch(4, []segment.Record{rec(0, "a"), rec(1, "b")}),
	}
	tp := segment.TopicRef{ID: e.topic.ID, Name: "t"}
	obj, ci, err := segment.CompactedObject(tp, cleaned)
	if err != nil {
		t.Fatal(err)
	}
	const key = "cleaned/x/0/0.seg"
	if err := e.store.RecordUpload(ctx, key, "a"); err != nil {
		t.Fatal(err)
	}
	if err := e.bucket.Put(ctx, key, obj); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.store.ReplaceIndex(ctx, metastore.Replacement{TopicPartition: old[0].TopicPartition, Old: old[:4],
		SegmentKey: key, AgentID: "a", Size: int64(len(obj)), Position: ci.Position, Length: ci.Length, BatchCount: ci.BatchCount,
		MinTimestamp: ci.MinTimestamp, MaxTimestamp: ci.MaxTimestamp}); err != nil || !ok {
		t.Fatalf("ReplaceIndex = %v, %v", ok, err)
	}
	for _, c := range []struct {
		from int64
		want []int64
	}{
		{0, []int64{0, 4, 8}},
		{1, []int64{0, 4, 8}},
		{2, []int64{4, 8}},
		{5, []int64{4, 8}},
		{6, []int64{8}},
		{7, []int64{8}},
	} {
		p := e.topic.Partition(0)
		reader := partition.NewReader(e.store, e.bucket, &partition.ReadStats{})
		data, err := reader.Read(ctx, p, c.from, 9, 1<<20, true)
		if err != nil {
			t.Fatalf("read from %d: %v", c.from, err)
		}
		if got := baseOffsets(t, data); !slices.Equal(got, c.want) {
			t.Fatalf("read from %d: batches at %v, want %v", c.from, got, c.want)
		}
	}
}

// countingBucket counts the GETs that reach the bucket under a cache.
type countingBucket struct {
	objectstore.Bucket
	gets atomic.Int64
}

func (c *countingBucket) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	c.gets.Add(1)
	return c.Bucket.Get(ctx, key, off, length)
}

// Warm loads into the cache what the Read that follows reads, from where
// it starts (the row's start, then where the last read stopped), and
// little more: the Read then makes no GET. Through a Getter that cannot
// warm, Warm reads nothing.
func TestWarmLoadsWhatReadReads(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const (
		batches   = 48
		valueSize = 64 << 10
		block     = 256 << 10
		limit     = 1 << 20
	)
	_, c := putLargeRow(t, e, "big.seg", batches, valueSize)
	under := &countingBucket{Bucket: e.bucket}
	cb, err := cache.New(under, cache.Config{BlockSize: block, MemoryBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	reader := partition.NewReader(e.store, cb, &partition.ReadStats{})
	p := e.topic.Partition(0)
	if err := e.topics.Load(ctx, p); err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < 2*batches; {
		before := under.gets.Load()
		reader.Warm(ctx, p, off, 2*batches, limit)
		warmed := under.gets.Load() - before
		if warmed == 0 || warmed > limit/block+2 {
			t.Fatalf("warm from %d: %d GETs of %d-byte blocks for a read of %d bytes", off, warmed, block, limit)
		}
		data, err := reader.Read(ctx, p, off, 2*batches, limit, true)
		if err != nil {
			t.Fatal(err)
		}
		if n := under.gets.Load() - before - warmed; n != 0 {
			t.Fatalf("read from %d after warming it: %d GETs, want 0", off, n)
		}
		got := baseOffsets(t, data)
		if len(got) == 0 || got[0] != off {
			t.Fatalf("read from %d: batches at %v", off, got)
		}
		off = got[len(got)-1] + 2
	}
	if st := cb.Stats(); st.BucketGets > (c.Length+c.Position)/block+1 {
		t.Fatalf("%d GETs of %d-byte blocks for a row ending at %d: blocks read twice", st.BucketGets, block, c.Position+c.Length)
	}

	g := &countingGetter{next: e.bucket}
	partition.NewReader(e.store, g, &partition.ReadStats{}).Warm(ctx, p, 0, 2*batches, limit)
	if gets := g.take(); len(gets) != 0 {
		t.Fatalf("warm through a Getter that cannot warm: %d reads", len(gets))
	}
}

// A read allocates what it returns and what it reads from the bucket, not
// the copies of a result grown batch by batch.
func TestReadAllocatesItsResultOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const (
		batches   = 48
		valueSize = 32 << 10
		limit     = 1 << 20
	)
	putLargeRow(t, e, "big.seg", batches, valueSize)
	p := e.topic.Partition(0)
	if err := e.topics.Load(ctx, p); err != nil {
		t.Fatal(err)
	}
	var data []byte
	read := func() {
		var err error
		if data, err = e.reader.Read(ctx, p, 0, 2*batches, limit, true); err != nil {
			t.Fatal(err)
		}
	}
	read() // the index rows are cached from here on
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	read()
	runtime.ReadMemStats(&after)
	// The bucket's read (a MiB, the read step) and the result.
	if n, want := int64(after.TotalAlloc-before.TotalAlloc), int64(1<<20+len(data)); n > want+want/4 {
		t.Fatalf("a read of %d bytes allocated %d bytes, want about %d", len(data), n, want)
	}
}
