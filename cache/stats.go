package cache

import "sync/atomic"

// Stats are cumulative counters, plus the bytes each tier holds now. A
// lookup is one block needed by one Get; a lookup that joins another's
// fetch counts where that fetch found the block.
type Stats struct {
	// Memory tier. Hits are lookups served from memory; Misses are lookups
	// that had to go to the bucket (they missed every tier); Evictions are
	// blocks pushed out of memory; Bytes is what memory holds now.
	Hits, Misses, Evictions int64
	Bytes                   int64

	// Disk tier (zero without one). DiskHits are lookups served from disk
	// (or from its write queue); DiskMisses are lookups that reached the
	// disk tier and missed it; DiskBytes is file bytes on disk now, headers
	// included. DiskErrors counts I/O errors (reads, writes, removals),
	// DiskCorrupt files that failed validation and were deleted, and
	// DiskWriteDrops blocks not written because the write queue was full.
	DiskHits, DiskMisses, DiskEvictions int64
	DiskBytes                           int64
	DiskErrors, DiskCorrupt             int64
	DiskWriteDrops                      int64

	// BucketGets counts GETs the cache sent to the bucket, on readers'
	// behalf and for read-ahead. ReadAheadIssued counts read-ahead fetches
	// started; ReadAheadUsed counts lookups served by a block that
	// read-ahead fetched (the first use of each).
	BucketGets                     int64
	ReadAheadIssued, ReadAheadUsed int64
}

// counters back Stats.
type counters struct {
	hits, misses, evictions                 atomic.Int64
	diskHits, diskMisses, diskEvictions     atomic.Int64
	diskErrors, diskCorrupt, diskWriteDrops atomic.Int64
	bucketGets, raIssued, raUsed            atomic.Int64
}

// Stats returns the counters.
func (b *Bucket) Stats() Stats {
	st := Stats{
		Hits:            b.c.hits.Load(),
		Misses:          b.c.misses.Load(),
		Evictions:       b.c.evictions.Load(),
		Bytes:           b.mem.held(),
		DiskHits:        b.c.diskHits.Load(),
		DiskMisses:      b.c.diskMisses.Load(),
		DiskEvictions:   b.c.diskEvictions.Load(),
		DiskErrors:      b.c.diskErrors.Load(),
		DiskCorrupt:     b.c.diskCorrupt.Load(),
		DiskWriteDrops:  b.c.diskWriteDrops.Load(),
		BucketGets:      b.c.bucketGets.Load(),
		ReadAheadIssued: b.c.raIssued.Load(),
		ReadAheadUsed:   b.c.raUsed.Load(),
	}
	if b.disk != nil {
		st.DiskBytes = b.disk.held()
	}
	return st
}
