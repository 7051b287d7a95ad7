package agent

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/siltstream/silt/segment"
)

// appendResult is the outcome of one produced batch, filled in when its
// flush commits (or fails).
type appendResult struct {
	baseOffset int64
	err        error // nil, or an error mapped to a Kafka code by the caller
}

// pending is one produce request waiting for its batches to commit.
type pending struct {
	wg sync.WaitGroup
}

// entry is one validated batch waiting in the buffer.
type entry struct {
	p      *partition
	topic  *topicState
	data   []byte // nil once copied into a segment
	size   int64  // len(data), kept for laying out the chunk
	hdr    segment.BatchHeader
	abort  bool // for a transaction marker (control batch): abort, not commit
	res    *appendResult
	waiter *pending
}

func (e *entry) finish(base int64, err error) {
	e.res.baseOffset, e.res.err = base, err
	e.waiter.wg.Done()
}

// Buffer is the write buffer shared by all partitions. Appends are cheap;
// the flusher cuts the buffer into a flush when it is full or old enough.
// Its memory is bounded: an append waits while buffered, uploading and
// committing bytes exceed the budget.
type Buffer struct {
	interval time.Duration
	maxBytes int64
	mem      *semaphore.Weighted
	memMax   int64
	inUse    atomic.Int64 // bytes reserved now, for metrics

	mu      sync.Mutex // guards the fields below
	entries []*entry
	bytes   int64
	first   time.Time // when the oldest buffered entry arrived
	timer   *time.Timer
	closed  bool

	kick chan struct{} // wakes the flusher; capacity 1
}

func newBuffer(interval time.Duration, flushBytes, memBytes int64) *Buffer {
	return &Buffer{
		interval: interval,
		maxBytes: flushBytes,
		mem:      semaphore.NewWeighted(memBytes),
		memMax:   memBytes,
		kick:     make(chan struct{}, 1),
	}
}

// reserve waits until n more bytes fit in the memory budget. It reports how
// long the caller was held back, which Produce returns as throttle_time_ms.
func (b *Buffer) reserve(ctx context.Context, n int64) (time.Duration, error) {
	if b.mem.TryAcquire(n) {
		b.inUse.Add(n)
		return 0, nil
	}
	start := time.Now()
	err := b.mem.Acquire(ctx, n)
	if err == nil {
		b.inUse.Add(n)
	}
	return time.Since(start), err
}

// release returns n bytes to the memory budget.
func (b *Buffer) release(n int64) {
	b.inUse.Add(-n)
	b.mem.Release(n)
}

// append adds entries (already reserved) in order. It returns false if the
// buffer is closed for shutdown.
func (b *Buffer) append(es []*entry) bool {
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
		b.bytes += int64(len(e.data))
	}
	if b.bytes >= b.maxBytes {
		b.signal()
	}
	return true
}

func (b *Buffer) signal() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// cut takes the buffered entries if the buffer is due (full or old enough)
// or force is set.
func (b *Buffer) cut(force bool) []*entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.entries) == 0 {
		return nil
	}
	if !force && b.bytes < b.maxBytes && time.Since(b.first) < b.interval {
		// Woken early (a stale timer): wait for the rest of the interval.
		b.timer.Reset(b.interval - time.Since(b.first))
		return nil
	}
	es := b.entries
	b.entries, b.bytes = nil, 0
	return es
}

// close stops further appends; what is buffered is still flushed.
func (b *Buffer) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.signal()
}
