package cache

import "sync"

// maxTrackedKeys bounds the per-key read positions kept for spotting
// sequential readers.
const maxTrackedKeys = 4096

// readAhead spots sequential readers and picks the blocks to fetch ahead of
// them. The fetches themselves run through Bucket.prefetch.
type readAhead struct {
	blocks int           // how far ahead
	slots  chan struct{} // one per running read-ahead fetch

	mu   sync.Mutex       // guards last and final
	last map[string]int64 // per key, the last block a reader read
	// final is, per key, the object's last block index where known (from a
	// Fill or a short block), so read-ahead stops at the end of an object:
	// a GET past it would be a wasted request.
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
