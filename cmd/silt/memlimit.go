package main

import (
	"os"
	"runtime/debug"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/cache"
)

// memoryMargin is what the agent needs beyond its configured budgets:
// request frames not yet admitted to the buffer, segment objects being
// built, connection buffers, the runtime.
const memoryMargin = 256 << 20

// applyMemoryLimit sets the Go runtime's soft memory limit to the agent's
// budgets (write buffer + memory cache) plus a fixed margin, unless the
// operator set GOMEMLIMIT. Without it the garbage collector lets the heap
// grow to twice what is live, so an agent whose buffer and cache are full
// would use about double its budgets; with it, the collector works harder
// near the limit instead. It is a soft limit: it never makes the agent fail.
func applyMemoryLimit(cfg agent.Config, cc cache.Config) (int64, bool) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	limit := cfg.BufferBytes + cc.MemoryBytes + memoryMargin
	debug.SetMemoryLimit(limit)
	return limit, true
}
