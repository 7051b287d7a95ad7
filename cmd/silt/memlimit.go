package main

import (
	"os"
	"runtime/debug"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/cache"
)

// memoryPlan is how an agent process keeps its memory within its budgets,
// buffer.bytes + cache.memory.bytes: the Go runtime's soft memory limit is
// the budgets themselves, and the write buffer and the memory cache each
// leave a share of theirs (reserve, in proportion to their sizes) for what
// the runtime needs besides their data — its own structures (span and GC
// metadata, stacks), requests other than Produce (each bounded by
// queued.max.request.bytes, in practice small), Fetch responses being
// written, connection buffers — and for the collector's headroom.
//
// Every produced byte is inside buffer.bytes from the moment its frame is
// read until it is committed (wire.Config.ProduceBudget), and so are the
// copy a flush makes and the batches it leaves to the collector (ingest
// keeps two flushes of buffer.bytes for them); the cache never holds more
// than cache.memory.bytes. So the live heap stays below the limit by the
// reserve even when both are full, and the limit makes the collector
// reclaim the write path's garbage before the heap grows: without one it
// would let the heap grow to twice the budgets. Collecting often is cheap
// here: nearly all of that heap is byte slices, which the collector does
// not scan.
//
// The reserve is a sixteenth of the budgets, at least 8 MiB. The runtime
// keeps its heap goal about 20 MiB under its limit at the default budgets
// (384 MiB; go_memstats_next_gc_bytes under overload), so live data must
// stay that far under too or the collector would run without pause. A
// buffer too small to give its share (it keeps three flushes) or a cache
// that would lose more than half gives what it can, and the limit rises by
// the rest.
//
// Compaction (jobs.Compactor) builds one compacted segment at a time in
// memory, up to compaction.segment.bytes, plus the few rows it is reading,
// and keyed compaction (jobs.Cleaner) keeps its key map of
// compaction.dedupe.buffer.bytes once it first cleans: the limit covers
// both beside the budgets (neither when compaction is off).
//
// What the limit does not cover is the binary's resident code and data
// (about 23 MiB once every path has run): an agent whose budgets are full
// has an RSS near the budgets plus that.
type memoryPlan struct {
	limit         int64 // the runtime's soft memory limit
	bufferReserve int64 // taken from buffer.bytes (agent.Config.BufferReserve)
	cacheReserve  int64 // taken from cache.memory.bytes
}

func planMemory(cfg agent.Config, cc cache.Config) memoryPlan {
	budgets := cfg.BufferBytes + cc.MemoryBytes
	reserve := max(budgets/16, 8<<20)
	share := int64(float64(reserve) * float64(cfg.BufferBytes) / float64(budgets))
	buf := max(min(share, cfg.BufferBytes-3*cfg.FlushBytes), 0)
	cch := max(min(reserve-buf, cc.MemoryBytes/2), 0)
	var compaction int64
	if cfg.CompactionSegmentBytes > 0 {
		compaction = cfg.CompactionSegmentBytes + cfg.CompactionDedupeBufferBytes
	}
	return memoryPlan{limit: budgets + reserve - buf - cch + compaction, bufferReserve: buf, cacheReserve: cch}
}

// applyMemoryLimit sets the runtime's soft memory limit and takes the
// reserves from the budgets (planMemory), unless the operator set
// GOMEMLIMIT: then the operator owns the process's memory and the budgets
// are used whole. It is a soft limit: near it the collector works harder;
// it never makes the agent fail.
func applyMemoryLimit(cfg *agent.Config, cc *cache.Config) (memoryPlan, bool) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return memoryPlan{}, false
	}
	plan := planMemory(*cfg, *cc)
	debug.SetMemoryLimit(plan.limit)
	cfg.BufferReserve = plan.bufferReserve
	cc.MemoryBytes -= plan.cacheReserve
	return plan, true
}
