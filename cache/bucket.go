package cache

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/singleflight"

	"github.com/siltstream/silt/objectstore"
)

// Config sizes the cache.
type Config struct {
	BlockSize   int64 // aligned read unit; default 4 MiB
	MemoryBytes int64 // memory tier budget; 0 disables caching of reads
}

// DefaultConfig is 4 MiB blocks and a 256 MiB memory tier.
func DefaultConfig() Config {
	return Config{BlockSize: 4 << 20, MemoryBytes: 256 << 20}
}

// Stats are cumulative counters.
type Stats struct {
	Hits, Misses, Evictions int64
	Bytes                   int64 // bytes held now
}

// Bucket is a caching decorator over an objectstore.Bucket. See the package
// comment for what it assumes.
type Bucket struct {
	next objectstore.Bucket
	cfg  Config
	sf   singleflight.Group

	mu     sync.Mutex // guards lru, blocks, keys, bytes
	lru    *list.List // of *block, most recent at front
	blocks map[blockID]*list.Element
	keys   map[string]map[int64]struct{} // block indexes held per key
	bytes  int64

	hits, misses, evictions atomic.Int64
}

type blockID struct {
	key   string
	index int64
}

type block struct {
	id   blockID
	data []byte // len < BlockSize only for an object's last block
}

var _ objectstore.Bucket = (*Bucket)(nil)

// New wraps next.
func New(next objectstore.Bucket, cfg Config) (*Bucket, error) {
	if cfg.BlockSize <= 0 {
		return nil, fmt.Errorf("cache: block size must be positive, got %d", cfg.BlockSize)
	}
	if cfg.MemoryBytes < 0 {
		return nil, fmt.Errorf("cache: cache.memory.bytes must not be negative, got %d", cfg.MemoryBytes)
	}
	return &Bucket{next: next, cfg: cfg, lru: list.New(), blocks: make(map[blockID]*list.Element), keys: make(map[string]map[int64]struct{})}, nil
}

// Stats returns the counters.
func (b *Bucket) Stats() Stats {
	b.mu.Lock()
	n := b.bytes
	b.mu.Unlock()
	return Stats{Hits: b.hits.Load(), Misses: b.misses.Load(), Evictions: b.evictions.Load(), Bytes: n}
}

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

// forget drops every cached block of key.
func (b *Bucket) forget(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for idx := range b.keys[key] {
		if el, ok := b.blocks[blockID{key, idx}]; ok {
			b.removeLocked(el)
		}
	}
}

// Fill caches the whole object data under key without uploading it. The
// bytes are copied, so the caller may reuse data.
func (b *Bucket) Fill(key string, data []byte) {
	if b.cfg.MemoryBytes == 0 {
		return
	}
	bs := b.cfg.BlockSize
	for i := int64(0); i*bs < int64(len(data)) || (i == 0 && len(data) == 0); i++ {
		end := min((i+1)*bs, int64(len(data)))
		blk := make([]byte, end-i*bs)
		copy(blk, data[i*bs:end])
		b.insert(blockID{key, i}, blk)
		if len(data) == 0 {
			break
		}
	}
}

// Get assembles the range from cached blocks, fetching missing blocks (whole
// and aligned) from the underlying bucket.
func (b *Bucket) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if b.cfg.MemoryBytes == 0 || length == 0 {
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
	for pos := off; length < 0 || pos < off+length; {
		idx := pos / bs
		blk, err := b.block(ctx, key, idx)
		if err != nil {
			return nil, err
		}
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
		if int64(len(blk)) < bs { // the object's last block
			break
		}
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// block returns one block, from memory or fetched once for all concurrent
// callers.
func (b *Bucket) block(ctx context.Context, key string, idx int64) ([]byte, error) {
	id := blockID{key, idx}
	if blk, ok := b.lookup(id); ok {
		b.hits.Add(1)
		return blk, nil
	}
	b.misses.Add(1)
	v, err, _ := b.sf.Do(fmt.Sprintf("%d/%s", idx, key), func() (any, error) {
		if blk, ok := b.lookup(id); ok {
			return blk, nil
		}
		data, err := b.next.Get(ctx, key, idx*b.cfg.BlockSize, b.cfg.BlockSize)
		if err != nil {
			return nil, err
		}
		b.insert(id, data)
		return data, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

func (b *Bucket) lookup(id blockID) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	el, ok := b.blocks[id]
	if !ok {
		return nil, false
	}
	b.lru.MoveToFront(el)
	return el.Value.(*block).data, true
}

func (b *Bucket) insert(id blockID, data []byte) {
	size := int64(len(data))
	if size > b.cfg.MemoryBytes {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if el, ok := b.blocks[id]; ok {
		b.lru.MoveToFront(el)
		return
	}
	for b.bytes+size > b.cfg.MemoryBytes && b.lru.Len() > 0 {
		b.removeLocked(b.lru.Back())
		b.evictions.Add(1)
	}
	b.blocks[id] = b.lru.PushFront(&block{id: id, data: data})
	if b.keys[id.key] == nil {
		b.keys[id.key] = make(map[int64]struct{})
	}
	b.keys[id.key][id.index] = struct{}{}
	b.bytes += size
}

func (b *Bucket) removeLocked(el *list.Element) {
	blk := b.lru.Remove(el).(*block)
	delete(b.blocks, blk.id)
	if idx := b.keys[blk.id.key]; idx != nil {
		delete(idx, blk.id.index)
		if len(idx) == 0 {
			delete(b.keys, blk.id.key)
		}
	}
	b.bytes -= int64(len(blk.data))
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

// Close closes the underlying bucket.
func (b *Bucket) Close() error { return b.next.Close() }
