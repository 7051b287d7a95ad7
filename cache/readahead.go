package cache

import (
	"sync"
	"sync/atomic"
)

// maxTrackedKeys bounds the per-key read positions kept for spotting
// sequential readers.
const maxTrackedKeys = 4096

// readAhead spots sequential readers and picks the blocks to fetch ahead of
// them. The fetches themselves run through Bucket.readAhead.
type readAhead struct {
	blocks int           // how far ahead
	slots  chan struct{} // one per running read-ahead fetch

	mu   sync.Mutex       // guards last and final
	last map[string]int64 // per key, the last block a reader read
	// final is, per key, the object's last block index where known (from a
	// Fill or a short block), or an upper bound on it (from a GET that
	// started past the end), so read-ahead stops at the end of an object:
	// a GET past it would be a wasted request, and one is made at most
	// once per block.
	final map[string]int64
}

func newReadAhead(blocks int) *readAhead {
	return &readAhead{
		blocks: blocks,
		slots:  make(chan struct{}, max(4, 2*blocks)),
		last:   make(map[string]int64),
		final:  make(map[string]int64),
	}
}

// observe records that a Get of key read blocks first..last and returns
// the blocks to fetch ahead: after a read that moved on to the next block
// (or spanned several), the ra.blocks that follow, unless last is the
// object's final block.
func (ra *readAhead) observe(key string, first, last int64, lastIsFinal bool) (from, to int64, ok bool) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	prev, seen := ra.last[key]
	if !seen {
		dropOne(ra.last)
	}
	ra.last[key] = last
	sequential := last > first || (seen && first == prev+1)
	if !sequential || lastIsFinal {
		return 0, 0, false
	}
	from, to = last+1, last+int64(ra.blocks)
	if final, ok := ra.final[key]; ok {
		to = min(to, final)
	}
	return from, to, from <= to
}

// setFinal records the index of key's last block.
func (ra *readAhead) setFinal(key string, idx int64) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if _, ok := ra.final[key]; !ok {
		dropOne(ra.final)
	}
	ra.final[key] = idx
}

// endsBefore records that key has no block idx: a GET of it started past
// the end of the object.
func (ra *readAhead) endsBefore(key string, idx int64) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	final, ok := ra.final[key]
	if !ok {
		dropOne(ra.final)
	} else if final < idx {
		return
	}
	ra.final[key] = idx - 1
}

// pastEnd reports whether block idx of key is known to lie past the end of
// the object.
func (ra *readAhead) pastEnd(key string, idx int64) bool {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	final, ok := ra.final[key]
	return ok && idx > final
}

// forget drops what is known of key, which is being rewritten or deleted.
func (ra *readAhead) forget(key string) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	delete(ra.last, key)
	delete(ra.final, key)
}

// dropOne makes room in a full map by deleting an arbitrary entry.
func dropOne(m map[string]int64) {
	if len(m) < maxTrackedKeys {
		return
	}
	for k := range m {
		delete(m, k)
		return
	}
}

func (ra *readAhead) tryAcquire() bool {
	select {
	case ra.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (ra *readAhead) release() { <-ra.slots }

// aheadMark goes with a block that read-ahead fetched, wherever the block
// is found: in memory, or in the result of the load that the readers
// waiting for it share. The first lookup to claim it counts the block as
// used, so ReadAheadUsed counts each block once however it is reached.
type aheadMark struct{ claimed atomic.Bool }

// claim reports whether this is the first use of a block read-ahead
// fetched; false for a block read-ahead did not fetch (m is nil).
func (m *aheadMark) claim() bool {
	return m != nil && m.claimed.CompareAndSwap(false, true)
}
