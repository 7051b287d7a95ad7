package ingest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// entry is one submitted batch waiting in the buffer or in a flush.
type entry struct {
	Batch
	size    int64 // len(Data), kept for laying out the chunk after Data is released
	pending *Pending
	slot    int // index of this batch in its Submit
}

func (e *entry) finish(base int64, err error) { e.pending.finish(e.slot, base, err) }

// buffer is the write buffer shared by all partitions. Appends are cheap;
// the flusher cuts the buffer into a flush when it is full or old enough.
// Its memory is bounded: an append waits while buffered, uploading and
// committing bytes exceed the budget.
type buffer struct {
	interval time.Duration
	maxBytes int64
	mem      *semaphore.Weighted
	memMax   int64
	inUse    atomic.Int64 // bytes reserved now, for metrics
	waiting  atomic.Int64 // reservations waiting for room now

	mu      sync.Mutex // guards the fields below
	entries []*entry
	bytes   int64
	first   time.Time // when the oldest buffered entry arrived
	timer   *time.Timer
	closed  bool

	kick chan struct{} // wakes the flusher; capacity 1
}

func newBuffer(interval time.Duration, flushBytes, memBytes int64) *buffer {
	return &buffer{
		interval: interval,
		maxBytes: flushBytes,
		mem:      semaphore.NewWeighted(memBytes),
		memMax:   memBytes,
		kick:     make(chan struct{}, 1),
	}
}

// reserve waits until n more bytes fit in the memory budget. It reports how
// long the caller was held back, which Produce returns as throttle_time_ms.
func (b *buffer) reserve(ctx context.Context, n int64) (time.Duration, error) {
	if b.mem.TryAcquire(n) {
		b.inUse.Add(n)
		return 0, nil
	}
	start := time.Now()
	b.waiting.Add(1)
	err := b.mem.Acquire(ctx, n)
	b.waiting.Add(-1)
	if err == nil {
		b.inUse.Add(n)
	}
	return time.Since(start), err
}

// release returns n bytes to the memory budget.
func (b *buffer) release(n int64) {
	if n <= 0 {
		return
	}
	b.inUse.Add(-n)
	b.mem.Release(n)
}

// append adds entries (already reserved) in order. It returns false if the
// buffer is closed for shutdown.
func (b *buffer) append(es []*entry) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	if len(b.entries) == 0 {
		b.first = time.Now()
		if b.timer == nil {
			b.timer = time.AfterFunc(b.interval, b.signal)
		} else {
			b.timer.Reset(b.interval)
		}
	}
	for _, e := range es {
		b.entries = append(b.entries, e)
		b.bytes += int64(len(e.Data))
	}
	if b.bytes >= b.maxBytes {
		b.signal()
	}
	return true
}

func (b *buffer) signal() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// cut takes the oldest buffered entries, up to flush.bytes (at least one
// entry), if the buffer is due (full or old enough) or force is set.
//
// A cut never holds more than flush.bytes, however much piled up while the
// flusher waited for an upload slot: building the object copies the cut's
// batches, which are garbage only once it is built, so an unbounded cut
// would hold its bytes twice over the buffer budget, and would make one
// object of any size, slow to upload and to retry. (Each batch is an
// allocation of its own: the Kafka server reads a Produce frame's record
// sets apart, so a batch left for the next cut keeps no other memory.)
// What is left stays due and the flusher is woken again for it.
func (b *buffer) cut(force bool) []*entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.entries) == 0 {
		return nil
	}
	age := time.Since(b.first)
	if !force && b.bytes < b.maxBytes && age < b.interval {
		// Woken early (a stale timer): wait for the rest of the interval.
		b.timer.Reset(b.interval - age)
		return nil
	}
	n, size := 0, int64(0)
	for n < len(b.entries) && (n == 0 || size+b.entries[n].size <= b.maxBytes) {
		size += b.entries[n].size
		n++
	}
	es := b.entries[:n:n]
	rest := b.entries[n:]
	b.entries = append([]*entry(nil), rest...) // let the cut's entries go with the flush
	b.bytes -= size
	if len(b.entries) > 0 {
		// Wake the flusher for the rest; cut decides again whether it is
		// due. b.first, the oldest cut entry's arrival, stands in for the
		// rest's: it errs towards flushing early, never late.
		b.signal()
	}
	return es
}

// close stops further appends; what is buffered is still flushed.
func (b *buffer) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.signal()
}

// state reports whether the buffer is closed and whether it is empty, for
// the flusher deciding when it is done.
func (b *buffer) state() (closed, empty bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed, len(b.entries) == 0
}
