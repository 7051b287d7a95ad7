// Package cache is the agents' read cache for segment objects.
//
// Bucket decorates an objectstore.Bucket: reads are served from aligned
// blocks (4 MiB by default) held in a memory tier with a byte budget and LRU
// eviction; concurrent misses for the same block fetch it once
// (singleflight); Put writes through, so the agent that flushed a segment
// serves its tailing consumers without a single GET.
//
// The cache relies on segment objects being immutable: a key is written once
// and never rewritten. Deleting a key drops its blocks.
package cache
