package main

import (
	"testing"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/cache"
)

// TestMemoryPlanKeepsTheLimitAtTheBudgets: at the defaults the runtime's
// limit is buffer.bytes + cache.memory.bytes and a sixteenth of them is
// left unused by the buffer and the cache in proportion; a buffer with no
// room to spare (three flushes) or a cache without memory gives what it
// can and the limit rises by the rest; the ingest config with the reserve
// is valid; compaction's segment and keyed compaction's key map are on
// top.
func TestMemoryPlanKeepsTheLimitAtTheBudgets(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name                   string
		buffer, flush, cache   int64
		compaction             int64
		limit, fromBuf, fromCc int64
	}{
		{"defaults", 128 * mib, 8 * mib, 256 * mib, 64 * mib, 512 * mib, 8 * mib, 16 * mib},
		{"compaction off", 128 * mib, 8 * mib, 256 * mib, 0, 384 * mib, 8 * mib, 16 * mib},
		{"buffer of three flushes", 24 * mib, 8 * mib, 256 * mib, 0, 280 * mib, 0, 17.5 * mib},
		{"no memory cache", 128 * mib, 8 * mib, 0, 0, 128 * mib, 8 * mib, 0},
		{"nothing to spare", 24 * mib, 8 * mib, 0, 0, 32 * mib, 0, 0},
	} {
		cfg := agent.DefaultConfig()
		cfg.BufferBytes, cfg.FlushBytes, cfg.CompactionSegmentBytes = tc.buffer, tc.flush, tc.compaction
		cc := cache.DefaultConfig()
		cc.MemoryBytes = tc.cache
		p := planMemory(cfg, cc)
		if p.limit != tc.limit || p.bufferReserve != tc.fromBuf || p.cacheReserve != tc.fromCc {
			t.Errorf("%s: limit %d MiB, reserve %d MiB from the buffer and %d MiB from the cache; want %d, %d, %d",
				tc.name, p.limit/mib, p.bufferReserve/mib, p.cacheReserve/mib, tc.limit/mib, tc.fromBuf/mib, tc.fromCc/mib)
		}
		budgets := tc.buffer + tc.cache
		compaction := int64(0)
		if tc.compaction > 0 {
			compaction = tc.compaction + cfg.CompactionDedupeBufferBytes
		}
		if got := p.limit - compaction - (budgets - p.bufferReserve - p.cacheReserve); got != max(budgets/16, 8*mib) {
			t.Errorf("%s: the limit is %d MiB above what the buffer and cache may hold, want the whole reserve", tc.name, got/mib)
		}
		cfg.BufferReserve = p.bufferReserve
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: the planned config is invalid: %v", tc.name, err)
		}
	}
}
