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

	mu   sync.Mutex // guards last
	last map[string]int64
}

func newReadAhead(blocks int) *readAhead {
	return &readAhead{
		blocks: blocks,
		slots:  make(chan struct{}, max(4, 2*blocks)),
		last:   make(map[string]int64),
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
	if !seen && len(ra.last) >= maxTrackedKeys {
		for k := range ra.last { // drop an arbitrary reader
			delete(ra.last, k)
			break
		}
	}
	ra.last[key] = last
	sequential := last > first || (seen && first == prev+1)
	if !sequential || lastIsFinal {
		return 0, 0, false
	}
	return last + 1, last + int64(ra.blocks), true
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
