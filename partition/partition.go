package partition

import (
	"sort"
	"sync"

	"github.com/siltstream/silt/metastore"
)

// tailCap bounds the index rows a partition keeps in memory. Rows are
// immutable, so a tailing consumer is served from here without a query; at
// 10 flushes a second 256 rows are about 25 s of history.
const tailCap = 256

// Partition is the agent's view of one partition: its offsets and the
// newest index rows. The store is the source of truth; this is a cache that
// the agent's own commits keep current.
type Partition struct {
	TP        metastore.TopicPartition // immutable
	TopicName string                   // immutable
	Index     int32                    // immutable

	mu       sync.Mutex // guards everything below
	loaded   bool       // offsets read from the store and kept current since
	seen     bool       // the store listed this partition at least once
	gone     bool       // its topic was deleted: serve nothing from here
	hw       int64
	logStart int64
	tail     []metastore.IndexEntry // contiguous rows, the last ending at hw-1
	// window holds contiguous rows last read from the store for a reader
	// behind the tail (a consumer catching up), so its next fetches need no
	// query until it reads past them.
	window  []metastore.IndexEntry
	waiters map[chan struct{}]struct{}

	// The last stable offset (LSO). lso is always safe: never above the
	// true LSO, which only grows, so read_committed readers may read below
	// it. open says a transaction was open at the last read from the store
	// (lso is pinned below hw). lsoStale says a commit since may have moved
	// the LSO in ways this view cannot tell (transactional data, or rows
	// after a gap it did not see): read_committed readers re-read it first.
	// lsoGen counts such commits, so a re-read racing one stays stale.
	lso      int64
	open     bool
	lsoStale bool
	lsoGen   uint64

	// hints remember where reads of large rows stopped (see readRow), the
	// newest replacing the oldest.
	hints    [readHints]readHint
	hintNext int
}

// readHints is how many read positions a partition remembers: one per
// consumer reading it at a different place, for a few.
const readHints = 4

// readHint says that the batch at byte pos of object key starts at offset.
// Objects never change, so a hint stays true for as long as the object
// exists.
type readHint struct {
	key         string
	pos, offset int64
}

// readHint returns the remembered position in row's object that is
// closest before offset, if one lies inside row.
func (p *Partition) readHint(key string, offset int64, row metastore.IndexEntry) (readHint, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best readHint
	found := false
	for _, h := range p.hints {
		if h.key == key && h.offset <= offset && h.offset > row.BaseOffset && h.offset <= row.LastOffset &&
			h.pos > row.Position && h.pos < row.Position+row.Length && (!found || h.offset > best.offset) {
			best, found = h, true
		}
	}
	return best, found
}

// setReadHint remembers h, replacing a hint of the same object at the same
// place or else the oldest.
func (p *Partition) setReadHint(h readHint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.hints {
		if p.hints[i].key == h.key && p.hints[i].offset == h.offset {
			return
		}
	}
	p.hints[p.hintNext] = h
	p.hintNext = (p.hintNext + 1) % readHints
}

// CachedLSO returns the last stable offset as known, without a query. It
// may be below the true one, never above.
func (p *Partition) CachedLSO() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lso
}

// installLSOLocked takes the LSO from a store snapshot s, read after lsoGen
// was gen. A transactional commit applied since (gen moved), or rows
// beyond the snapshot, leave it stale: the snapshot's value is still safe,
// but it may be low.
func (p *Partition) installLSOLocked(s metastore.PartitionState, gen uint64) {
	snap := min(s.LastStableOffset, s.HighWatermark)
	p.lso = max(p.lso, snap)
	p.open = s.LastStableOffset < s.HighWatermark
	p.lsoStale = p.lsoGen != gen || p.hw > s.HighWatermark
}

// Offsets returns the high watermark and log start offset.
func (p *Partition) Offsets() (hw, logStart int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hw, p.logStart
}

// raiseLogStartLocked moves the cached log start offset forward to ls and
// drops cached index rows wholly below it: the store has pruned them, and
// their objects are deleted after gc.grace. Long polls wake, so a reader
// now below the log start is answered out of range.
func (p *Partition) raiseLogStartLocked(ls int64) {
	if ls <= p.logStart {
		return
	}
	p.logStart = ls
	p.hw = max(p.hw, ls)
	p.tail = dropBelow(p.tail, ls)
	p.window = dropBelow(p.window, ls)
	p.wakeLocked()
}

// dropBelow returns rows without those ending before offset, in a new
// slice: readers may hold the old one.
func dropBelow(rows []metastore.IndexEntry, offset int64) []metastore.IndexEntry {
	i := sort.Search(len(rows), func(i int) bool { return rows[i].LastOffset >= offset })
	if i == 0 {
		return rows
	}
	return append([]metastore.IndexEntry(nil), rows[i:]...)
}

// dropIndexCache forgets every cached index row: one of them named an
// object the bucket no longer has, so the store's index moved on (rows
// pruned by retention, or replaced).
func (p *Partition) dropIndexCache() {
	p.mu.Lock()
	p.tail, p.window = nil, nil
	p.mu.Unlock()
}

// commitLocked records a committed chunk: it moves the high watermark and
// keeps the row for readers. It reports whether the row follows the known
// end of the log directly (false after a gap of rows this view did not see,
// or before the partition is loaded).
func (p *Partition) commitLocked(e metastore.IndexEntry) (contiguous bool) {
	if !p.loaded {
		// Not read from the store yet: remember how far we know the log goes,
		// so a load racing with this commit cannot move the watermark back.
		p.hw = max(p.hw, e.LastOffset+1)
		return false
	}
	if e.LastOffset < p.hw {
		return true // already known (a late notification of an older commit)
	}
	contiguous = e.BaseOffset == p.hw
	if n := len(p.tail); n > 0 {
		switch last := p.tail[n-1].LastOffset; {
		case e.BaseOffset <= last:
			return true // already known (a late notification of an older commit)
		case e.BaseOffset != last+1:
			p.tail = p.tail[:0] // a gap: rows we did not see; keep the tail contiguous
		}
	}
	if len(p.tail) == tailCap {
		copy(p.tail, p.tail[1:])
		p.tail = p.tail[:tailCap-1]
	}
	p.tail = append(p.tail, e)
	p.hw = max(p.hw, e.LastOffset+1)
	return contiguous
}

// wakeLocked signals every long poll watching p.
func (p *Partition) wakeLocked() {
	for ch := range p.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Watch registers ch to be signalled when the high watermark moves.
func (p *Partition) Watch(ch chan struct{}) {
	p.mu.Lock()
	if p.waiters == nil {
		p.waiters = make(map[chan struct{}]struct{})
	}
	p.waiters[ch] = struct{}{}
	p.mu.Unlock()
}

// Unwatch stops signalling ch.
func (p *Partition) Unwatch(ch chan struct{}) {
	p.mu.Lock()
	delete(p.waiters, ch)
	p.mu.Unlock()
}

// cachedIndex returns rows covering offset from memory — the tail the
// agent's commits keep, or the window of rows last read from the store — or
// ok=false if neither reaches it.
func (p *Partition) cachedIndex(offset, maxBytes int64) ([]metastore.IndexEntry, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return nil, false
	}
	if rows, ok := rowsFrom(p.tail, offset, maxBytes); ok {
		return rows, true
	}
	return rowsFrom(p.window, offset, maxBytes)
}

// rowsFrom returns the rows of contiguous rows covering offset onwards, up to
// maxBytes (at least one row).
func rowsFrom(rows []metastore.IndexEntry, offset, maxBytes int64) ([]metastore.IndexEntry, bool) {
	if len(rows) == 0 || rows[0].BaseOffset > offset || rows[len(rows)-1].LastOffset < offset {
		return nil, false
	}
	i := sort.Search(len(rows), func(i int) bool { return rows[i].LastOffset >= offset })
	var out []metastore.IndexEntry
	var n int64
	for ; i < len(rows) && (n < maxBytes || len(out) == 0); i++ {
		out = append(out, rows[i])
		n += rows[i].Length
	}
	return out, true
}

// setWindow keeps rows read from the store for the next fetches.
func (p *Partition) setWindow(rows []metastore.IndexEntry) {
	p.mu.Lock()
	p.window = rows
	p.mu.Unlock()
}
