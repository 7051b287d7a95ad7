package main

import (
	"os"
	"runtime/debug"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/cache"
)

// memoryLimit is the Go runtime's soft memory limit for an agent: its
// budgets (write buffer + memory cache) and a margin of 5% of them, at
// least 16 MiB, for what the budgets do not count: requests other than
// Produce (each bounded by queued.max.request.bytes, in practice small),
// Fetch responses being written, connection buffers, the runtime.
//
// Every produced byte is inside buffer.bytes from the moment its frame is
// read until it is committed (wire.Config.ProduceBudget), and the cache
// never holds more than cache.memory.bytes, so the live heap stays near the
// budgets even when both are full; without a limit the garbage collector
// would let the heap grow to twice that before collecting.
func memoryLimit(cfg agent.Config, cc cache.Config) int64 {
	budgets := cfg.BufferBytes + cc.MemoryBytes
	return budgets + max(budgets/20, 16<<20)
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
