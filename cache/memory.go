package cache

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// blockID names one aligned block of one object.
type blockID struct {
	key   string
	index int64
}

// memTier is the memory tier: blocks under a byte budget, evicted least
// recently used first.
type memTier struct {
	budget    int64
	evictions *atomic.Int64

	mu     sync.Mutex // guards lru, blocks, keys, bytes
	lru    *list.List // of *memBlock, most recent at front
	blocks map[blockID]*list.Element
	keys   map[string]map[int64]struct{} // block indexes held per key
	bytes  int64
}

type memBlock struct {
	id   blockID
	data []byte // len < BlockSize only for an object's last block
	// ahead is set on a block that read-ahead fetched, so its first use
	// can be counted.
	ahead *aheadMark
	// owned is set on the blocks of an object the cache was handed
	// (Bucket.PutOwned): they are slices of one allocation and are
	// evicted together, since evicting one alone frees nothing.
	owned *ownedObject
}

// ownedObject marks the blocks of one handed-over object.
type ownedObject struct{ key string }

func newMemTier(budget int64, evictions *atomic.Int64) *memTier {
	return &memTier{
		budget:    budget,
		evictions: evictions,
		lru:       list.New(),
		blocks:    make(map[blockID]*list.Element),
		keys:      make(map[string]map[int64]struct{}),
	}
}

// get returns a block, and its read-ahead mark if read-ahead brought it
// in, and makes it the most recent.
func (m *memTier) get(id blockID) (data []byte, ahead *aheadMark, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.blocks[id]
	if !ok {
		return nil, nil, false
	}
	m.lru.MoveToFront(el)
	blk := el.Value.(*memBlock)
	return blk.data, blk.ahead, true
}

// contains reports whether the block is held, without touching the LRU.
func (m *memTier) contains(id blockID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.blocks[id]
	return ok
}

// put inserts a block, evicting the least recent ones to stay within the
// budget, and returns what left the tier (including the block itself if it
// does not fit at all) so the caller can hand it to the disk tier outside
// the lock.
func (m *memTier) put(id blockID, data []byte, ahead *aheadMark, owned *ownedObject) (evicted []*memBlock) {
	size := int64(len(data))
	if size > m.budget {
		return []*memBlock{{id: id, data: data}}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.blocks[id]; ok {
		m.lru.MoveToFront(el)
		return nil
	}
	for m.bytes+size > m.budget && m.lru.Len() > 0 {
		blk := m.removeLocked(m.lru.Back())
		evicted = append(evicted, blk)
		m.evictions.Add(1)
		if blk.owned != nil {
			evicted = m.evictSiblingsLocked(blk, evicted)
		}
	}
	m.blocks[id] = m.lru.PushFront(&memBlock{id: id, data: data, ahead: ahead, owned: owned})
	if m.keys[id.key] == nil {
		m.keys[id.key] = make(map[int64]struct{})
	}
	m.keys[id.key][id.index] = struct{}{}
	m.bytes += size
	return evicted
}

// evictSiblingsLocked evicts the other blocks of blk's owned object.
func (m *memTier) evictSiblingsLocked(blk *memBlock, evicted []*memBlock) []*memBlock {
	for idx := range m.keys[blk.id.key] {
		el, ok := m.blocks[blockID{blk.id.key, idx}]
		if ok && el.Value.(*memBlock).owned == blk.owned {
			evicted = append(evicted, m.removeLocked(el))
			m.evictions.Add(1)
		}
	}
	return evicted
}

// forget drops every block of key.
func (m *memTier) forget(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for idx := range m.keys[key] {
		if el, ok := m.blocks[blockID{key, idx}]; ok {
			m.removeLocked(el)
		}
	}
}

func (m *memTier) removeLocked(el *list.Element) *memBlock {
	blk := m.lru.Remove(el).(*memBlock)
	delete(m.blocks, blk.id)
	if idx := m.keys[blk.id.key]; idx != nil {
		delete(idx, blk.id.index)
		if len(idx) == 0 {
			delete(m.keys, blk.id.key)
		}
	}
	m.bytes -= int64(len(blk.data))
	return blk
}

func (m *memTier) held() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bytes
}
