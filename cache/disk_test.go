package cache_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/siltstream/silt/cache"
	"github.com/siltstream/silt/objectstore/mem"
)

// putObjects stores n objects of size bytes each under obj-<i> in the bucket
// and returns their contents.
func putObjects(t *testing.T, under *countingBucket, n, size int) map[string][]byte {
	t.Helper()
	objs := make(map[string][]byte)
	for i := range n {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i*31 + j*7)
		}
		key := fmt.Sprintf("obj-%d", i)
		if err := under.Put(context.Background(), key, data); err != nil {
			t.Fatal(err)
		}
		objs[key] = data
	}
	return objs
}

// readAll reads every object in 30-byte steps and checks the bytes.
func readAll(t *testing.T, b *cache.Bucket, objs map[string][]byte) {
	t.Helper()
	for key, data := range objs {
		for off := 0; off < len(data); off += 30 {
			got, err := b.Get(readerCtx(), key, int64(off), 30)
			if err != nil {
				t.Fatalf("%s at %d: %v", key, off, err)
			}
			if want := data[off:min(off+30, len(data))]; !bytes.Equal(got, want) {
				t.Fatalf("%s at %d: bytes differ", key, off)
			}
		}
	}
}

func TestDiskTierSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	under := &countingBucket{Bucket: mem.New()}
	objs := putObjects(t, under, 4, 450) // 5 blocks each, the last short
	cfg := cache.Config{BlockSize: 100, MemoryBytes: 200, DiskDir: dir, DiskBytes: 1 << 20}

	b1, err := cache.New(under, cfg)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, b1, objs)
	if n := under.gets.Load(); n != 20 {
		t.Fatalf("first pass made %d GETs, want one per block (20)", n)
	}
	b1.Stop() // finishes the queued disk writes

	b2, err := cache.New(under, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if st := b2.Stats(); st.DiskBytes == 0 {
		t.Fatalf("stats after restart %+v: the disk tier is empty", st)
	}
	readAll(t, b2, objs)
	if n := under.gets.Load(); n != 20 {
		t.Fatalf("after a restart over the same directory, %d more GETs reached the bucket, want 0", n-20)
	}
	if st := b2.Stats(); st.DiskHits == 0 || st.Misses != 0 {
		t.Fatalf("stats after restart %+v: want disk hits and no misses", st)
	}
}

func TestCorruptDiskFilesAreDetectedAndRefetched(t *testing.T) {
	dir := t.TempDir()
	under := &countingBucket{Bucket: mem.New()}
	objs := putObjects(t, under, 2, 450)
	cfg := cache.Config{BlockSize: 100, MemoryBytes: 100, DiskDir: dir, DiskBytes: 1 << 20}
	b1, err := cache.New(under, cfg)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, b1, objs)
	b1.Stop()
	before := under.gets.Load()

	path := func(key string, idx int64) string { return filepath.Join(dir, cache.DiskName(key, idx)) }
	// A flipped data byte: found by the data checksum on read.
	flipped := path("obj-0", 1)
	buf, err := os.ReadFile(flipped)
	if err != nil {
		t.Fatal(err)
	}
	buf[len(buf)-3] ^= 0xff
	if err := os.WriteFile(flipped, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	// A truncated file and a damaged header: found by the scan at start.
	truncated := path("obj-0", 3)
	if err := os.Truncate(truncated, 50); err != nil {
		t.Fatal(err)
	}
	header := path("obj-1", 2)
	buf, err = os.ReadFile(header)
	if err != nil {
		t.Fatal(err)
	}
	buf[20] ^= 0xff // the block index, covered by the header checksum
	if err := os.WriteFile(header, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	// A file under another block's name.
	misnamed := path("obj-1", 4)
	if err := os.Rename(path("obj-1", 0), misnamed); err != nil {
		t.Fatal(err)
	}
	// A temporary file left by a crash.
	tmp := filepath.Join(dir, "ab", "block-123.tmp")
	os.MkdirAll(filepath.Dir(tmp), 0o755)
	if err := os.WriteFile(tmp, []byte("half a block"), 0o644); err != nil {
		t.Fatal(err)
	}

	b2, err := cache.New(under, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{truncated, header, misnamed, tmp} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived the start-up scan (stat err %v)", p, err)
		}
	}
	if st := b2.Stats(); st.DiskCorrupt != 3 {
		t.Errorf("stats after the scan %+v: want DiskCorrupt 3 (truncated, bad header, misnamed)", st)
	}
	readAll(t, b2, objs)
	// Five blocks were lost: obj-0 1 and 3, obj-1 0 (moved), 2 and 4 (replaced).
	if n := under.gets.Load() - before; n != 5 {
		t.Errorf("%d GETs after the damage, want 5 (one per damaged block)", n)
	}
	if st := b2.Stats(); st.DiskCorrupt != 4 || st.DiskErrors != 0 {
		t.Errorf("stats %+v: want DiskCorrupt 4 (3 at the scan, 1 on read) and no I/O errors", st)
	}
	b2.Stop()

	// The refetched blocks were written back: a third start needs no GETs.
	before = under.gets.Load()
	b3, err := cache.New(under, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b3.Close()
	readAll(t, b3, objs)
	if n := under.gets.Load() - before; n != 0 {
		t.Errorf("%d GETs after the damaged blocks were refetched, want 0", n)
	}
}

// A disk read that fails for another reason than corruption falls back to
// the bucket and is counted; the read itself succeeds.
func TestDiskReadErrorFallsBackToBucket(t *testing.T) {
	dir := t.TempDir()
	under := &countingBucket{Bucket: mem.New()}
	objs := putObjects(t, under, 1, 300)
	b, err := cache.New(under, cache.Config{BlockSize: 100, MemoryBytes: 100, DiskDir: dir, DiskBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	readAll(t, b, objs)
	b.WaitDiskWrites()
	// Replace block 0's file with a directory: reading it fails with EISDIR.
	p := filepath.Join(dir, cache.DiskName("obj-0", 0))
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	before := under.gets.Load()
	got, err := b.Get(readerCtx(), "obj-0", 0, 100)
	if err != nil || !bytes.Equal(got, objs["obj-0"][:100]) {
		t.Fatalf("Get over a broken disk file: %v", err)
	}
	if n := under.gets.Load() - before; n != 1 {
		t.Errorf("%d GETs, want 1", n)
	}
	if st := b.Stats(); st.DiskErrors != 1 {
		t.Errorf("stats %+v: want DiskErrors 1", st)
	}
}

// dirBytes sums the sizes of all files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBudgetsRespected(t *testing.T) {
	dir := t.TempDir()
	under := &countingBucket{Bucket: mem.New()}
	objs := putObjects(t, under, 8, 1000)
	// No read-ahead at first: with nothing in the background, the files can
	// be compared with the count after every read.
	cfg := cache.Config{BlockSize: 100, MemoryBytes: 350, DiskDir: dir, DiskBytes: 1200}
	var b *cache.Bucket
	check := func(quiet bool) {
		t.Helper()
		st := b.Stats()
		if st.Bytes > cfg.MemoryBytes || st.DiskBytes > cfg.DiskBytes {
			t.Fatalf("stats %+v: over budget (memory %d, disk %d)", st, cfg.MemoryBytes, cfg.DiskBytes)
		}
		if !quiet {
			return
		}
		b.WaitDiskWrites()
		if n := dirBytes(t, dir); n > cfg.DiskBytes || n != b.Stats().DiskBytes {
			t.Fatalf("%d bytes of files on disk, counted %d, budget %d", n, b.Stats().DiskBytes, cfg.DiskBytes)
		}
	}
	for _, readAhead := range []int{0, 2} {
		cfg.ReadAheadBlocks = readAhead
		var err error
		if b, err = cache.New(under, cfg); err != nil {
			t.Fatal(err)
		}
		for key, data := range objs {
			for off := 0; off < len(data); off += 70 {
				if _, err := b.Get(readerCtx(), key, int64(off), 70); err != nil {
					t.Fatal(err)
				}
				check(readAhead == 0)
			}
			b.Fill(key+"-filled", data) // write-through fills evict too
			check(readAhead == 0)
		}
		b.Stop()
		check(true)
		st := b.Stats()
		if st.Evictions == 0 || st.DiskEvictions == 0 {
			t.Fatalf("stats %+v: want evictions from both tiers", st)
		}
		if readAhead > 0 && st.ReadAheadIssued == 0 {
			t.Fatalf("stats %+v: want read-ahead", st)
		}
	}
	// A restart with a smaller budget trims the directory to it.
	cfg.DiskBytes = 500
	b2, err := cache.New(under, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if n, st := dirBytes(t, dir), b2.Stats(); n > cfg.DiskBytes || n != st.DiskBytes {
		t.Fatalf("after a restart with budget %d: %d bytes on disk, counted %d", cfg.DiskBytes, n, st.DiskBytes)
	}
}

// Concurrent readers of a block share one load, whichever tier it comes
// from.
func TestSingleflightAcrossTiers(t *testing.T) {
	dir := t.TempDir()
	under := &countingBucket{Bucket: mem.New()}
	objs := putObjects(t, under, 1, 400)
	b, err := cache.New(under, cache.Config{BlockSize: 100, DiskDir: dir, DiskBytes: 1 << 20}) // no memory tier
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	read := func(idx int64) {
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				got, err := b.Get(readerCtx(), "obj-0", idx*100, 100)
				if err != nil || !bytes.Equal(got, objs["obj-0"][idx*100:(idx+1)*100]) {
					t.Errorf("block %d: %v", idx, err)
				}
			})
		}
		wg.Wait()
	}
	read(0)
	if n := under.gets.Load(); n != 1 {
		t.Fatalf("16 concurrent misses of one block made %d GETs, want 1", n)
	}
	b.WaitDiskWrites()
	before := b.Stats()
	read(0) // now from disk
	if n := under.gets.Load(); n != 1 {
		t.Fatalf("reads of a block on disk made %d more GETs", n-1)
	}
	if st := b.Stats(); st.DiskHits-before.DiskHits != 16 || st.Misses != before.Misses {
		t.Fatalf("stats %+v, before %+v: want 16 more disk hits and no more misses", st, before)
	}
}
