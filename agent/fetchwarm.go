package agent

// Warming a fetch's reads. A fetch reads its partitions one after another
// into the response, because what each may return depends on what those
// before it returned (fetch.max.bytes, KIP-74's first batch). Cold, each
// of those reads would wait on its own GETs, so a consumer catching up on
// 64 partitions waited on 64 GETs in a row per fetch. Instead, before a
// partition is read, the next few that the fetch will read have their
// index rows resolved and their bytes loaded into the cache
// (partition.Reader.Warm) at the same time: the read of each then waits
// only for its own warm, and the GETs overlap.
//
// What is warmed is bounded twice: at most fetchWarmAhead partitions
// beyond the one being read, and in total no more than the fetch may
// still return (each warm asks for what its read could return at most, so
// the blocks warmed and not read are a few partitions' worth, kept in the
// cache for the consumer's next fetch).

import (
	"context"
	"sync"
)

// fetchWarmAhead is how many partitions of a fetch are warmed at once
// ahead of its reads: the fetch's GETs in flight.
const fetchWarmAhead = 8

// readWarmer warms the reads of one fetchOnce. Its goroutines live no
// longer than the fetchOnce: stop waits for them.
type readWarmer struct {
	warm     func(ctx context.Context, j int, limit int64) // warms read j
	limits   []int64                                       // per read, its most bytes
	maxBytes int64                                         // the fetch's budget

	ctx     context.Context
	done    []chan struct{} // per read, closed when its warm ended; nil if not started
	warmed  []int64         // per read, the bytes its warm asked for
	pending int64           // bytes asked for by warms of reads not read yet
	next    int             // reads before next are started or skipped
	read    int             // reads before read have been read (or passed)
	wg      sync.WaitGroup
}

// warmReads returns the warmer of fetchOnce's reads: parts[reads[j]] is
// read from its offset to ends[reads[j]]. With fewer than two reads there
// is nothing to overlap and it warms nothing.
func (a *Agent) warmReads(ctx context.Context, parts []fetchPart, ends []int64, reads []int, maxBytes int64) *readWarmer {
	w := &readWarmer{ctx: ctx, maxBytes: maxBytes}
	if len(reads) < 2 {
		return w
	}
	w.limits = make([]int64, len(reads))
	for j, i := range reads {
		w.limits[j] = parts[i].maxBytes
	}
	w.done = make([]chan struct{}, len(reads))
	w.warmed = make([]int64, len(reads))
	w.warm = func(ctx context.Context, j int, limit int64) {
		fp := parts[reads[j]]
		a.reader.Warm(ctx, fp.p, fp.offset, ends[reads[j]], limit)
	}
	return w
}

// wait is called before read j (in order, each once) with the bytes the
// fetch holds so far. It starts the warms of the reads after it that the
// window and the budget allow, then waits for read j's warm.
func (w *readWarmer) wait(j int, total int64) {
	if w.done == nil {
		return
	}
	for ; w.read < j; w.read++ { // read and counted in total now
		w.pending -= w.warmed[w.read]
	}
	w.next = max(w.next, j)
	for ; w.next < min(j+fetchWarmAhead, len(w.done)); w.next++ {
		limit := min(w.limits[w.next], w.maxBytes-total-w.pending)
		if limit <= 0 {
			break // the budget is taken; later calls go on from here
		}
		w.start(w.next, limit)
	}
	if d := w.done[j]; d != nil {
		select {
		case <-d:
		case <-w.ctx.Done():
		}
	}
}

func (w *readWarmer) start(j int, limit int64) {
	done := make(chan struct{})
	w.done[j], w.warmed[j] = done, limit
	w.pending += limit
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(done)
		w.warm(w.ctx, j, limit)
	}()
}

// stop waits for the warms still running: those of reads the fetch had no
// room left for. They are not cancelled, as an index query cancelled
// midway costs the store its connection; each is a few GETs at most.
func (w *readWarmer) stop() { w.wg.Wait() }
