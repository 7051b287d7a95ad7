// Package cache is the agents' read cache for segment objects.
//
// Bucket decorates an objectstore.Bucket: reads are served from aligned
// blocks (4 MiB by default). A block is looked for in memory, then on
// local disk, then fetched whole from the bucket, and concurrent lookups of
// one block share one load, whichever tier serves it. Put writes through,
// so the agent that flushed a segment serves its tailing consumers without
// a single GET.
//
// The memory tier (memTier) holds blocks under a byte budget, least
// recently used out first. The optional disk tier (diskTier, Config.DiskDir)
// keeps blocks that memory evicted or the bucket returned in checksummed
// files under its own budget; one writer goroutine writes them, so no read
// waits for a disk write, and the index is rebuilt from the files on start,
// so the tier survives restarts. Disk errors are counted, never returned:
// a block that cannot be read from disk is fetched from the bucket. See
// diskfile.go for the file layout.
//
// Read-ahead (Config.ReadAheadBlocks) fetches the next blocks of an object
// in the background once a reader moves on from one block to the next, a
// bounded number at a time. Stop (and Close) cancels it and waits for it.
//
// The cache relies on segment objects being immutable: a key is written once
// and never rewritten. Deleting a key drops its blocks from every tier.
package cache
