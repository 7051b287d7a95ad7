package cache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/siltstream/silt/objectstore"
)

// Config sizes the cache.
type Config struct {
	BlockSize   int64 // aligned read unit; default 4 MiB
	MemoryBytes int64 // memory tier budget

	// DiskDir is the disk tier's directory (cache.disk.dir); empty means no
	// disk tier. DiskBytes (cache.disk.bytes) is its budget in file bytes
	// and must be positive when DiskDir is set. The directory belongs to
	// the cache: at start it deletes what it cannot validate there.
	DiskDir   string
	DiskBytes int64

	// ReadAheadBlocks is how many blocks are fetched in the background
	// ahead of a reader that moved on sequentially from one block to the
	// next; 0 disables read-ahead.
	ReadAheadBlocks int
}

// DefaultConfig is 4 MiB blocks, a 256 MiB memory tier, no disk tier and
// read-ahead of 2 blocks.
func DefaultConfig() Config {
	return Config{BlockSize: 4 << 20, MemoryBytes: 256 << 20, ReadAheadBlocks: 2}
}

// ErrClosed is returned by Get after Stop or Close.
var ErrClosed = errors.New("cache is closed")

// Bucket is a caching decorator over an objectstore.Bucket. See the package
// comment for what it assumes.
type Bucket struct {
	next objectstore.Bucket
	cfg  Config
	fl   flight // one load per block at a time, through every tier
	mem  *memTier
	disk *diskTier  // nil without a disk tier
	ra   *readAhead // nil without read-ahead
	c    counters

	// ctx is cancelled by Stop; background fetches run under it, and
	// readers' fetches are cancelled by it too.
	ctx    context.Context
	cancel context.CancelFunc

	lifeMu  sync.Mutex // guards stopped and wg.Add
	stopped bool
	wg      sync.WaitGroup // running loads
}

var _ objectstore.Bucket = (*Bucket)(nil)

// Validate checks c; errors name the config key.
func (c Config) Validate() error {
	switch {
	case c.BlockSize <= 0:
		return fmt.Errorf("cache.block.bytes: must be positive, got %d", c.BlockSize)
	case c.MemoryBytes < 0:
		return fmt.Errorf("cache.memory.bytes: must not be negative, got %d", c.MemoryBytes)
	case c.DiskDir != "" && c.DiskBytes <= 0:
		return fmt.Errorf("cache.disk.bytes: must be positive when cache.disk.dir is set, got %d", c.DiskBytes)
	case c.DiskDir == "" && c.DiskBytes != 0:
		return fmt.Errorf("cache.disk.dir: must be set when cache.disk.bytes is (%d)", c.DiskBytes)
	case c.DiskDir != "" && c.BlockSize > math.MaxUint32:
		return fmt.Errorf("cache.block.bytes: must be at most %d with a disk tier, got %d", uint32(math.MaxUint32), c.BlockSize)
	case c.ReadAheadBlocks < 0:
		return fmt.Errorf("cache read-ahead blocks: must not be negative, got %d", c.ReadAheadBlocks)
	}
	return nil
}

// New wraps next. With a disk tier it first rebuilds the tier's index from
// the directory.
func New(next objectstore.Bucket, cfg Config) (*Bucket, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	b := &Bucket{next: next, cfg: cfg}
	b.mem = newMemTier(cfg.MemoryBytes, &b.c.evictions)
	if cfg.DiskDir != "" {
		d, err := openDiskTier(cfg.DiskDir, cfg.DiskBytes, cfg.BlockSize, &b.c)
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		b.disk = d
	}
	if cfg.ReadAheadBlocks > 0 {
		b.ra = newReadAhead(cfg.ReadAheadBlocks)
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// Next returns the bucket b caches, for a caller whose reads must not fill
// the cache: compaction reads each byte of old segments once, and would
// evict what consumers read.
func (b *Bucket) Next() objectstore.Bucket { return b.next }

// enabled reports whether reads are cached at all.
func (b *Bucket) enabled() bool { return b.cfg.MemoryBytes > 0 || b.disk != nil }

// Put uploads data and, once the upload succeeded, fills the cache with it.
// Blocks of an earlier object under key are dropped first, so even an
// overwrite (which Silt never does to segments) reads back correctly.
func (b *Bucket) Put(ctx context.Context, key string, data []byte) error {
	b.forget(key)
	err := b.next.Put(ctx, key, data)
	b.forget(key)
	if err != nil {
		return err
	}
	b.Fill(key, data)
	return nil
}

// forget drops every cached block of key, in every tier.
func (b *Bucket) forget(key string) {
	b.mem.forget(key)
	if b.disk != nil {
		b.disk.forget(key)
	}
	if b.ra != nil {
		b.ra.forget(key)
	}
}

// PutOwned is Put for a caller that hands data over: it never reads or
// writes data again. The cache keeps the object's blocks as slices of data
// rather than copies, so writing through costs no allocation and the
// object is never in memory twice. (Put's contract, that the bucket does
// not retain data, is what PutOwned waives.)
func (b *Bucket) PutOwned(ctx context.Context, key string, data []byte) error {
	b.forget(key)
	err := b.next.Put(ctx, key, data)
	b.forget(key)
	if err != nil {
		return err
	}
	b.fill(key, data, true)
	return nil
}

// Fill caches the whole object data under key without uploading it. The
// bytes are copied, so the caller may reuse data. Blocks go to memory and
// reach the disk tier when memory evicts them.
func (b *Bucket) Fill(key string, data []byte) { b.fill(key, data, false) }

// fill caches data's blocks, copies of them unless owned.
func (b *Bucket) fill(key string, data []byte, owned bool) {
	if !b.enabled() {
		return
	}
	var obj *ownedObject
	if owned {
		obj = &ownedObject{key: key}
	}
	// Blocks 0 to n: the last is short, possibly empty, just as fetching
	// them would find, so a read that runs up to or past the end of the
	// object needs no GET.
	bs := b.cfg.BlockSize
	n := int64(len(data)) / bs
	if b.ra != nil {
		b.ra.setFinal(key, n)
	}
	for i := int64(0); i <= n; i++ {
		end := min((i+1)*bs, int64(len(data)))
		blk := data[i*bs : end : end]
		if !owned {
			blk = make([]byte, end-i*bs)
			copy(blk, data[i*bs:end])
		}
		b.toDisk(b.mem.put(blockID{key, i}, blk, nil, obj))
	}
}

// toDisk hands blocks that left memory to the disk tier.
func (b *Bucket) toDisk(evicted []*memBlock) {
	if b.disk == nil {
		return
	}
	for _, blk := range evicted {
		b.disk.enqueue(blk.id, blk.data)
	}
}

// Get assembles the range from cached blocks, fetching missing blocks (whole
// and aligned) from the underlying bucket.
func (b *Bucket) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if !b.enabled() || length == 0 {
		return b.next.Get(ctx, key, off, length)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("get %s: negative offset %d: %w", key, off, objectstore.ErrInvalidRange)
	}
	bs := b.cfg.BlockSize
	var out []byte
	if length >= 0 {
		out = make([]byte, 0, length)
	}
	first, last, lastIsFinal := off/bs, off/bs, false
	for pos := off; length < 0 || pos < off+length; {
		idx := pos / bs
		blk, err := b.block(ctx, key, idx)
		if err != nil {
			return nil, err
		}
		last, lastIsFinal = idx, int64(len(blk)) < bs
		inBlock := pos - idx*bs
		if inBlock > int64(len(blk)) || (inBlock == int64(len(blk)) && pos > off) {
			if pos == off {
				return nil, fmt.Errorf("get %s at %d: %w", key, off, objectstore.ErrInvalidRange)
			}
			break // clipped at the end of the object
		}
		if inBlock == int64(len(blk)) { // off == size: empty read
			break
		}
		n := int64(len(blk)) - inBlock
		if length >= 0 {
			n = min(n, off+length-pos)
		}
		out = append(out, blk[inBlock:inBlock+n]...)
		pos += n
		if lastIsFinal {
			break
		}
	}
	if b.ra != nil {
		if from, to, ok := b.ra.observe(key, first, last, lastIsFinal); ok {
			b.readAhead(key, from, to)
		}
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// Warm makes sure the blocks holding [off, off+length) of key are cached,
// loading those that no tier holds as Get would, without copying anything
// out. It returns once they are in memory, or with the error of a load
// that failed or ctx's. A fetch that reads many partitions warms their
// ranges at once, so that their cold reads wait on the bucket together
// rather than one after another, then reads each through Get. A block
// loaded here counts as a lookup (a miss); the Get that then finds it in
// memory counts a hit. Warm does not feed read-ahead: Get does.
func (b *Bucket) Warm(ctx context.Context, key string, off, length int64) error {
	if !b.enabled() || length <= 0 || off < 0 {
		return nil
	}
	bs := b.cfg.BlockSize
	for idx := off / bs; idx <= (off+length-1)/bs; idx++ {
		if b.ra != nil && b.ra.pastEnd(key, idx) {
			return nil
		}
		if b.mem.contains(blockID{key, idx}) {
			continue
		}
		blk, err := b.block(ctx, key, idx)
		if err != nil {
			return err
		}
		if int64(len(blk)) < bs {
			return nil // the object's last block
		}
	}
	return nil
}

// loadResult is what a load hands to everyone waiting on it.
type loadResult struct {
	data     []byte
	from     tier
	prefetch bool       // loaded by read-ahead
	ahead    *aheadMark // set if read-ahead fetched the block
}

type tier int

const (
	fromMemory tier = iota
	fromDisk
	fromBucket
)

// block returns one block: from memory, or loaded once for all concurrent
// readers (and read-ahead) from disk or the bucket.
func (b *Bucket) block(ctx context.Context, key string, idx int64) ([]byte, error) {
	id := blockID{key, idx}
	if data, ahead, ok := b.mem.get(id); ok {
		b.c.hits.Add(1)
		if ahead.claim() {
			b.c.raUsed.Add(1)
		}
		return data, nil
	}
	for attempt := 0; ; attempt++ {
		c, leader := b.fl.join(id)
		if leader {
			// The load runs on its own goroutine so that this reader can
			// give up on ctx without failing the others waiting for it.
			if !b.track() {
				b.fl.finish(id, c, loadResult{}, fmt.Errorf("get %s: %w", key, ErrClosed))
			} else {
				go func() {
					defer b.wg.Done()
					res, err := b.load(ctx, id)
					b.fl.finish(id, c, res, err)
				}()
			}
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		res := c.res
		if c.err != nil {
			if res.prefetch && attempt == 0 {
				continue // a failed read-ahead is no answer for a reader: fetch on our own
			}
			return nil, c.err
		}
		switch res.from {
		case fromMemory:
			b.c.hits.Add(1)
		case fromDisk:
			b.c.diskHits.Add(1)
		case fromBucket:
			b.c.misses.Add(1)
			if b.disk != nil {
				b.c.diskMisses.Add(1)
			}
		}
		if res.ahead.claim() {
			b.c.raUsed.Add(1)
		}
		return res.data, nil
	}
}

// track registers a goroutine so Stop waits for it; it fails once stopping.
func (b *Bucket) track() bool {
	b.lifeMu.Lock()
	defer b.lifeMu.Unlock()
	if b.stopped {
		return false
	}
	b.wg.Add(1)
	return true
}

// load finds a block in memory, on disk or in the bucket, and caches it.
// It runs once per block for all waiters, so it does not stop when the
// reader that started it gives up: it keeps that reader's context values
// but is cancelled only by Stop.
func (b *Bucket) load(ctx context.Context, id blockID) (loadResult, error) {
	res, err := b.fetch(ctx, id, false)
	if err != nil {
		return res, err
	}
	b.keep(id, res)
	return res, nil
}

// fetch finds a block in memory, on disk or in the bucket, without caching
// it (see keep). A read-ahead fetch makes no GET for a block known to lie
// past the end of the object.
func (b *Bucket) fetch(ctx context.Context, id blockID, prefetch bool) (loadResult, error) {
	if data, ahead, ok := b.mem.get(id); ok {
		// The block may have arrived since the caller looked: if read-ahead
		// brought it in, pass its mark on so its first use still counts.
		return loadResult{data: data, from: fromMemory, ahead: ahead}, nil
	}
	var ahead *aheadMark
	if prefetch {
		ahead = new(aheadMark)
	}
	if b.disk != nil {
		if data, ok := b.disk.read(id); ok {
			return loadResult{data: data, from: fromDisk, prefetch: prefetch, ahead: ahead}, nil
		}
	}
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(b.ctx, cancel)()
	if fctx.Err() != nil { // stopping
		return loadResult{prefetch: prefetch}, fmt.Errorf("get %s: %w", id.key, ErrClosed)
	}
	off := id.index * b.cfg.BlockSize
	// Read-ahead may have picked this block before a GET past the end
	// failed and taught it where the object ends. That load recorded the
	// end before it finished, and this one started after it, so asking here
	// rather than when picking makes each GET past the end at most once.
	if prefetch && b.ra.pastEnd(id.key, id.index) {
		return loadResult{prefetch: prefetch}, fmt.Errorf("get %s at %d: past the end: %w", id.key, off, objectstore.ErrInvalidRange)
	}
	b.c.bucketGets.Add(1)
	if prefetch {
		b.c.raIssued.Add(1)
	}
	data, err := b.next.Get(fctx, id.key, off, b.cfg.BlockSize)
	if err != nil {
		if b.ra != nil && objectstore.IsInvalidRange(err) {
			b.ra.endsBefore(id.key, id.index)
		}
		return loadResult{prefetch: prefetch}, err
	}
	if b.ra != nil && int64(len(data)) < b.cfg.BlockSize {
		b.ra.setFinal(id.key, id.index)
	}
	return loadResult{data: data, from: fromBucket, prefetch: prefetch, ahead: ahead}, nil
}

// keep caches a block that fetch read from disk or the bucket.
func (b *Bucket) keep(id blockID, res loadResult) {
	switch res.from {
	case fromDisk:
		b.toDisk(b.mem.put(id, res.data, res.ahead, nil))
	case fromBucket:
		b.toDisk(b.mem.put(id, res.data, res.ahead, nil))
		if b.disk != nil {
			b.disk.enqueue(id, res.data)
		}
	}
}

// readAhead starts background loads of blocks from..to of key that no tier
// holds, as far as free slots allow. Each load is registered before
// readAhead returns, so a reader that reaches the block while it is loading
// waits for that load instead of fetching the block again. A load gives its
// slot back before its block can be seen (in memory or by its waiters), so
// a reader never finds the slots taken by blocks it has already read: a
// single sequential reader always has ReadAheadBlocks slots for the blocks
// ahead of it.
func (b *Bucket) readAhead(key string, from, to int64) {
	for idx := from; idx <= to; idx++ {
		id := blockID{key, idx}
		if b.mem.contains(id) || (b.disk != nil && b.disk.contains(id)) {
			continue
		}
		if !b.ra.tryAcquire() {
			return
		}
		c, leader := b.fl.join(id)
		if !leader { // already loading
			b.ra.release()
			continue
		}
		if !b.track() {
			b.ra.release()
			b.fl.finish(id, c, loadResult{prefetch: true}, fmt.Errorf("get %s: %w", key, ErrClosed))
			return
		}
		go func() {
			defer b.wg.Done()
			res, err := b.fetch(b.ctx, id, true)
			b.ra.release()
			if err == nil {
				b.keep(id, res)
			}
			b.fl.finish(id, c, res, err)
		}()
	}
}

// Head is passed through.
func (b *Bucket) Head(ctx context.Context, key string) (objectstore.Attrs, error) {
	return b.next.Head(ctx, key)
}

// Delete removes the object and drops its cached blocks.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	err := b.next.Delete(ctx, key)
	b.forget(key)
	return err
}

// List is passed through.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(objectstore.Attrs) error) error {
	return b.next.List(ctx, prefix, fn)
}

// Stop stops the cache's background work without closing the underlying
// bucket, for owners that close that bucket themselves: it cancels
// read-ahead and in-flight fetches, waits for them, then finishes the
// queued disk writes. Afterwards Get serves what memory holds and fails
// with ErrClosed for anything else (Put, Head, Delete and List still pass
// through). Stop is idempotent.
func (b *Bucket) Stop() {
	b.lifeMu.Lock()
	if b.stopped {
		b.lifeMu.Unlock()
		return
	}
	b.stopped = true
	b.lifeMu.Unlock()
	b.cancel()
	b.wg.Wait()
	if b.disk != nil {
		b.disk.close()
	}
}

// Close stops the cache (see Stop) and closes the underlying bucket.
func (b *Bucket) Close() error {
	b.Stop()
	return b.next.Close()
}
