package cache_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/siltstream/silt/cache"
	"github.com/siltstream/silt/objectstore/mem"
)

// scan reads key from start to end in steps of step bytes.
func scan(t *testing.T, b *cache.Bucket, key string, data []byte, step int) {
	t.Helper()
	for off := 0; off < len(data); off += step {
		got, err := b.Get(readerCtx(), key, int64(off), int64(step))
		if err != nil {
			t.Fatalf("at %d: %v", off, err)
		}
		if !bytes.Equal(got, data[off:min(off+step, len(data))]) {
			t.Fatalf("at %d: bytes differ", off)
		}
	}
}

func TestReadAheadTurnsSequentialMissesIntoBackgroundFetches(t *testing.T) {
	const blocks = 32
	data := make([]byte, blocks*100-50) // the last block is short
	for i := range data {
		data[i] = byte(i)
	}
	for _, tc := range []struct {
		readAhead      int
		wantReaderGets int64
	}{
		{0, blocks}, // every block is a miss on the reader's path
		{1, 2},      // blocks 0 and 1; block 1 shows the pattern
		{2, 2},
		{4, 2},
	} {
		under := &countingBucket{Bucket: mem.New()}
		if err := under.Put(context.Background(), "seg", data); err != nil {
			t.Fatal(err)
		}
		b, err := cache.New(under, cache.Config{BlockSize: 100, MemoryBytes: 1 << 20, ReadAheadBlocks: tc.readAhead})
		if err != nil {
			t.Fatal(err)
		}
		scan(t, b, "seg", data, 25)
		b.Close() // waits for read-ahead still running
		st := b.Stats()
		if n := under.readerGets.Load(); n != tc.wantReaderGets {
			t.Errorf("read-ahead %d: %d GETs on the reader's path, want %d", tc.readAhead, n, tc.wantReaderGets)
		}
		// Each block is fetched once. Until it knows where the object ends,
		// read-ahead may ask for blocks past it (failed GETs, never used):
		// from the second-to-last block, up to depth-1 of them, each once.
		if offs := under.repeatedOffsets(); len(offs) > 0 {
			t.Errorf("read-ahead %d: GETs repeated at offsets %v", tc.readAhead, offs)
		}
		pastEnd := int64(max(0, tc.readAhead-1))
		if n := under.gets.Load(); n < blocks || n > blocks+pastEnd {
			t.Errorf("read-ahead %d: %d GETs in all, want %d to %d", tc.readAhead, n, blocks, blocks+pastEnd)
		}
		if tc.readAhead > 0 {
			if st.ReadAheadUsed != blocks-2 || st.ReadAheadIssued != under.gets.Load()-2 || st.BucketGets != under.gets.Load() {
				t.Errorf("read-ahead %d: stats %+v: want %d used, %d issued", tc.readAhead, st, blocks-2, under.gets.Load()-2)
			}
		}
	}
}

// A reader that reaches a block while read-ahead is fetching it waits for
// that fetch rather than making its own.
func TestReaderJoinsReadAheadInFlight(t *testing.T) {
	under := &countingBucket{Bucket: mem.New(), hold: make(chan struct{})}
	data := bytes.Repeat([]byte("0123456789"), 100)
	if err := under.Put(context.Background(), "seg", data); err != nil {
		t.Fatal(err)
	}
	b, err := cache.New(under, cache.Config{BlockSize: 100, MemoryBytes: 1 << 20, ReadAheadBlocks: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	scan(t, b, "seg", data[:200], 50) // blocks 0 and 1: read-ahead of 2 and 3 starts, held
	done := make(chan []byte)
	go func() {
		got, err := b.Get(readerCtx(), "seg", 200, 100)
		if err != nil {
			t.Error(err)
		}
		done <- got
	}()
	select {
	case <-done:
		t.Fatal("the read of block 2 finished while its read-ahead was held")
	case <-time.After(20 * time.Millisecond): // not a correctness wait: only gives a wrong implementation the chance to show itself
	}
	close(under.hold)
	if got := <-done; !bytes.Equal(got, data[200:300]) {
		t.Fatal("block 2 differs")
	}
	if n := under.readerGets.Load(); n != 2 {
		t.Fatalf("%d GETs on the reader's path, want 2", n)
	}
	if st := b.Stats(); st.ReadAheadUsed != 1 {
		t.Fatalf("stats %+v: want ReadAheadUsed 1", st)
	}
}

// Close cancels read-ahead that is still fetching, waits for it, and leaves
// no goroutine behind.
func TestCloseStopsReadAhead(t *testing.T) {
	base := runtime.NumGoroutine()
	dir := t.TempDir()
	under := &countingBucket{Bucket: mem.New(), hold: make(chan struct{})} // background GETs never finish on their own
	data := bytes.Repeat([]byte("x"), 2000)
	if err := under.Put(context.Background(), "seg", data); err != nil {
		t.Fatal(err)
	}
	b, err := cache.New(under, cache.Config{BlockSize: 100, MemoryBytes: 1 << 20, DiskDir: dir, DiskBytes: 1 << 20, ReadAheadBlocks: 4})
	if err != nil {
		t.Fatal(err)
	}
	scan(t, b, "seg", data[:200], 100)
	for under.gets.Load() < 6 { // the reader's 2 and read-ahead's 4, held
		if st := b.Stats(); st.ReadAheadIssued > 4 {
			t.Fatalf("stats %+v: more read-ahead than asked for", st)
		}
		runtime.Gosched()
	}
	closed := make(chan error)
	go func() { closed <- b.Close() }()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.ReadAheadIssued != 4 || under.cancelled.Load() != 4 {
		t.Fatalf("stats %+v, %d GETs cancelled: want 4 read-ahead fetches, all cancelled by Close", st, under.cancelled.Load())
	}
	if _, err := b.Get(readerCtx(), "seg", 1500, 10); !errors.Is(err, cache.ErrClosed) {
		t.Fatalf("Get after Close: err %v, want ErrClosed", err)
	}
	// Goroutines that ended may take a moment to leave the count.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// Read-ahead knows where an object filled by Put ends, so a tailing reader
// of freshly written segments makes no GET at all, not even past the end.
func TestReadAheadStopsAtTheEndOfFilledObjects(t *testing.T) {
	under := &countingBucket{Bucket: mem.New()}
	b, err := cache.New(under, cache.Config{BlockSize: 100, MemoryBytes: 1 << 20, ReadAheadBlocks: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{250, 300, 301, 1000} {
		data := bytes.Repeat([]byte{byte(size)}, size)
		if err := b.Put(context.Background(), "seg", data); err != nil {
			t.Fatal(err)
		}
		scan(t, b, "seg", data, 40)
	}
	b.Close()
	if n := under.gets.Load(); n != 0 {
		t.Fatalf("%d GETs while reading written-through objects, want 0 (stats %+v)", n, b.Stats())
	}
}
