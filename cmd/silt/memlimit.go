package main

import (
	"os"
	"runtime/debug"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/cache"
)

// memoryLimit is the Go runtime's soft memory limit for an agent: its
// budgets (write buffer + memory cache) and a margin of 2.5% of them, at
// least 8 MiB, for the runtime's own structures and what the budgets do not
// count: requests other than Produce (each bounded by
// queued.max.request.bytes, in practice small), Fetch responses being
// written, connection buffers.
//
// Every produced byte is inside buffer.bytes from the moment its frame is
// read until it is committed (wire.Config.ProduceBudget), and so are the
// copy a flush makes and the batches it leaves to the collector (ingest
// keeps two flushes of buffer.bytes for them); the cache never holds more
// than cache.memory.bytes. So the live heap stays within the budgets even
// when both are full, and a limit just above them makes the collector
// reclaim the write path's garbage before the heap grows: without one it
// would let the heap grow to twice the budgets. Collecting often is cheap
// here: nearly all of that heap is byte slices, which the collector does
// not scan.
//
// What the limit does not cover is the binary's resident code and data
// (about 13 MiB): an agent whose budgets are full has an RSS near the limit
// plus that.
func memoryLimit(cfg agent.Config, cc cache.Config) int64 {
	budgets := cfg.BufferBytes + cc.MemoryBytes
	return budgets + max(budgets/40, 8<<20)
}

// applyMemoryLimit sets the runtime's soft memory limit (memoryLimit)
// unless the operator set GOMEMLIMIT. It is a soft limit: near it the
// collector works harder; it never makes the agent fail.
func applyMemoryLimit(cfg agent.Config, cc cache.Config) (int64, bool) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	limit := memoryLimit(cfg, cc)
	debug.SetMemoryLimit(limit)
	return limit, true
}
