package cache_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/siltstream/silt/cache"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/mem"
)

// The cache must read exactly what the bucket under it reads, for every
// range: inside a block, across blocks, clipped at the end, at the end, past
// the end, and for missing keys. (The full objectstoretest suite is not run:
// its concurrent-overwrite atomicity test does not apply, since the cache
// assumes write-once keys, as segments are.)
func TestReadsMatchUnderlyingBucket(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		testReadsMatch(t, cache.Config{BlockSize: 100, MemoryBytes: 1 << 20})
	})
	t.Run("disk", func(t *testing.T) {
		// A memory tier of two blocks, so most reads go through the disk.
		cfg := cache.Config{BlockSize: 100, MemoryBytes: 200, DiskDir: t.TempDir(), DiskBytes: 1 << 20}
		b := testReadsMatch(t, cfg)
		if st := b.Stats(); st.DiskHits == 0 {
			t.Fatalf("stats %+v: no read was served from disk", st)
		}
	})
	t.Run("disk-only", func(t *testing.T) {
		testReadsMatch(t, cache.Config{BlockSize: 100, DiskDir: t.TempDir(), DiskBytes: 1 << 20})
	})
	t.Run("read-ahead", func(t *testing.T) {
		testReadsMatch(t, cache.Config{BlockSize: 100, MemoryBytes: 300, DiskDir: t.TempDir(), DiskBytes: 1 << 20, ReadAheadBlocks: 2})
	})
}

func testReadsMatch(t *testing.T, cfg cache.Config) *cache.Bucket {
	ctx := context.Background()
	under := mem.New()
	b, err := cache.New(under, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	sizes := []int{0, 1, 99, 100, 101, 250, 300}
	for _, n := range sizes {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i * 7)
		}
		key := fmt.Sprintf("obj-%d", n)
		if err := under.Put(ctx, key, data); err != nil {
			t.Fatal(err)
		}
		for _, off := range []int64{0, 1, 50, 99, 100, 101, 199, 200, 250, 299, 300, 301, 1000} {
			for _, length := range []int64{-1, 0, 1, 50, 100, 101, 250, 1000} {
				want, wantErr := under.Get(ctx, key, off, length)
				got, gotErr := b.Get(ctx, key, off, length)
				if (wantErr == nil) != (gotErr == nil) || objectstore.IsInvalidRange(wantErr) != objectstore.IsInvalidRange(gotErr) {
					t.Fatalf("%s [%d,+%d): err %v, want %v", key, off, length, gotErr, wantErr)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s [%d,+%d): %d bytes differ from the %d wanted", key, off, length, len(got), len(want))
				}
			}
		}
	}
	if _, err := b.Get(ctx, "missing", 0, 10); !objectstore.IsNotFound(err) {
		t.Fatalf("missing key: err %v, want IsNotFound", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Get(cctx, "obj-300", 0, 10); err == nil {
		t.Fatal("Get with a cancelled context succeeded")
	}
	return b
}

// readerKey marks the context of a test's own reads, so countingBucket can
// tell GETs made on a reader's behalf from background ones (read-ahead).
type readerKey struct{}

func readerCtx() context.Context { return context.WithValue(context.Background(), readerKey{}, true) }

// countingBucket counts Gets, in all, on readers' behalf and per offset,
// and can hold background Gets until released.
type countingBucket struct {
	objectstore.Bucket
	gets, readerGets, cancelled atomic.Int64
	hold                        chan struct{} // if set, background Gets wait for it to close

	mu    sync.Mutex
	atOff map[int64]int // Gets per offset
}

func (c *countingBucket) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	c.gets.Add(1)
	c.mu.Lock()
	if c.atOff == nil {
		c.atOff = make(map[int64]int)
	}
	c.atOff[off]++
	c.mu.Unlock()
	if ctx.Value(readerKey{}) != nil {
		c.readerGets.Add(1)
	} else if c.hold != nil {
		select {
		case <-c.hold:
		case <-ctx.Done():
			c.cancelled.Add(1)
			return nil, ctx.Err()
		}
	}
	return c.Bucket.Get(ctx, key, off, length)
}

// repeatedOffsets lists the offsets read more than once, in order.
func (c *countingBucket) repeatedOffsets() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var offs []int64
	for off, n := range c.atOff {
		if n > 1 {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	return offs
}

func TestWriteThroughServesWithoutGets(t *testing.T) {
	ctx := context.Background()
	under := &countingBucket{Bucket: mem.New()}
	b, _ := cache.New(under, cache.Config{BlockSize: 64, MemoryBytes: 1 << 20})
	data := bytes.Repeat([]byte("0123456789"), 100)
	if err := b.Put(ctx, "k", data); err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < int64(len(data)); off += 37 {
		got, err := b.Get(ctx, "k", off, 100)
		if err != nil {
			t.Fatal(err)
		}
		if want := data[off:min(off+100, int64(len(data)))]; !bytes.Equal(got, want) {
			t.Fatalf("range at %d differs", off)
		}
	}
	if n := under.gets.Load(); n != 0 {
		t.Fatalf("%d GETs reached the bucket after a write-through Put, want 0", n)
	}
}

func TestConcurrentMissesFetchOnceAndEvict(t *testing.T) {
	ctx := context.Background()
	under := &countingBucket{Bucket: mem.New()}
	data := bytes.Repeat([]byte("x"), 4096)
	if err := under.Put(ctx, "k", data); err != nil {
		t.Fatal(err)
	}
	b, _ := cache.New(under, cache.Config{BlockSize: 1024, MemoryBytes: 2048})
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Get(ctx, "k", 0, 10); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := under.gets.Load(); n != 1 {
		t.Fatalf("16 concurrent misses of one block made %d GETs, want 1", n)
	}
	if _, err := b.Get(ctx, "k", 0, -1); err != nil { // 4 blocks through a 2-block budget
		t.Fatal(err)
	}
	st := b.Stats()
	if st.Bytes > 2048 || st.Evictions < 2 {
		t.Fatalf("stats %+v: want at most 2048 bytes held and at least 2 evictions", st)
	}
}

// PutOwned keeps the caller's object as its blocks, without a copy, and
// serves it like Put. Blocks of such an object share its memory, so they
// leave the memory tier together: evicting one alone would free nothing
// while the budget counted it freed.
func TestPutOwnedKeepsTheObjectAndEvictsItWhole(t *testing.T) {
	ctx := context.Background()
	under := &countingBucket{Bucket: mem.New()}
	b, _ := cache.New(under, cache.Config{BlockSize: 64, MemoryBytes: 6 * 64})
	first := bytes.Repeat([]byte("a"), 4*64)
	if err := b.PutOwned(ctx, "first", first); err != nil {
		t.Fatal(err)
	}
	if blk := b.MemBlock("first", 1); len(blk) != 64 || &blk[0] != &first[64] {
		t.Fatal("a block of an owned object is not the object's own memory")
	}
	if got, err := b.Get(ctx, "first", 64, 64); err != nil || !bytes.Equal(got, first[64:128]) {
		t.Fatalf("read of an owned object: %q, %v", got, err)
	}
	if n := under.gets.Load(); n != 0 {
		t.Fatalf("%d GETs after PutOwned, want 0", n)
	}
	// Touch the last block so the first object's blocks sit at both ends
	// of the LRU order; then a second object needs the room of one of them.
	if _, err := b.Get(ctx, "first", 3*64, 64); err != nil {
		t.Fatal(err)
	}
	second := bytes.Repeat([]byte("b"), 3*64)
	if err := b.PutOwned(ctx, "second", second); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Bytes != 3*64 {
		t.Fatalf("memory tier holds %d bytes, want only the second object's %d: the first leaves whole", st.Bytes, 3*64)
	}
	before := under.gets.Load()
	if got, err := b.Get(ctx, "first", 3*64, 64); err != nil || !bytes.Equal(got, first[3*64:]) {
		t.Fatalf("first object after eviction: %q, %v", got, err)
	}
	if under.gets.Load() == before {
		t.Fatal("the first object's last block stayed cached after its siblings were evicted")
	}
}

// Warm loads the blocks of a range, once each, so that reading the range
// afterwards makes no GET; it stops at the end of the object, loads
// nothing already held, and does nothing without a cache.
func TestWarmLoadsTheBlocksGetReads(t *testing.T) {
	ctx := context.Background()
	under := &countingBucket{Bucket: mem.New()}
	data := make([]byte, 450) // blocks 0-3 whole, block 4 short
	for i := range data {
		data[i] = byte(i)
	}
	if err := under.Put(ctx, "k", data); err != nil {
		t.Fatal(err)
	}
	b, err := cache.New(under, cache.Config{BlockSize: 100, MemoryBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Warm(ctx, "k", 150, 100); err != nil { // blocks 1 and 2
		t.Fatal(err)
	}
	if n := under.gets.Load(); n != 2 {
		t.Fatalf("warming two blocks made %d GETs, want 2", n)
	}
	if got, err := b.Get(ctx, "k", 100, 200); err != nil || !bytes.Equal(got, data[100:300]) {
		t.Fatalf("read of the warmed blocks: %v", err)
	}
	if n := under.gets.Load(); n != 2 {
		t.Fatalf("reading warmed blocks made %d more GETs, want 0", n-2)
	}
	// Blocks 2 (held), 3 and 4 (the end), nothing past it.
	if err := b.Warm(ctx, "k", 250, 1000); err != nil {
		t.Fatal(err)
	}
	if n := under.gets.Load(); n != 4 {
		t.Fatalf("warming to past the end made %d GETs, want 2 (blocks 3 and 4)", n-2)
	}
	if offs := under.repeatedOffsets(); len(offs) != 0 {
		t.Fatalf("blocks at %v fetched more than once", offs)
	}

	off := &countingBucket{Bucket: mem.New()}
	nb, err := cache.New(off, cache.Config{BlockSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	if err := nb.Warm(ctx, "k", 0, 100); err != nil || off.gets.Load() != 0 {
		t.Fatalf("warm without a cache: %d GETs, %v; want none", off.gets.Load(), err)
	}
}

// Warm waits for the loads it needs, whoever started them, and returns
// their error; a missing object is not found, as Get would say.
func TestWarmJoinsLoadsAndReportsErrors(t *testing.T) {
	ctx := context.Background()
	under := &countingBucket{Bucket: mem.New()}
	if err := under.Put(ctx, "k", bytes.Repeat([]byte("x"), 300)); err != nil {
		t.Fatal(err)
	}
	b, err := cache.New(under, cache.Config{BlockSize: 100, MemoryBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Warm(ctx, "k", 0, 300); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := under.gets.Load(); n != 3 {
		t.Fatalf("8 concurrent warms of 3 blocks made %d GETs, want 3", n)
	}
	if err := b.Warm(ctx, "gone", 0, 100); !objectstore.IsNotFound(err) {
		t.Fatalf("warm of a missing object: %v, want not found", err)
	}
}
