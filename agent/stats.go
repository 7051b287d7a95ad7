package agent

import (
	"sync/atomic"
	"time"
)

// Stats are the agent's cumulative counters, read by benchmarks and the
// metrics endpoint.
type Stats struct {
	Flushes        atomic.Int64
	FlushBytes     atomic.Int64
	UploadNanos    atomic.Int64
	Commits        atomic.Int64
	CommitNanos    atomic.Int64
	ProducedBytes  atomic.Int64
	ProducedBatchs atomic.Int64
	ProducedRecord atomic.Int64 // records in the produced batches
	FetchedBytes   atomic.Int64
	IndexQueries   atomic.Int64 // index lookups that went to the store
	UploadRecords  atomic.Int64 // store calls recording upload keys (one per keyBatch flushes)
	IndexCacheHits atomic.Int64 // index lookups served from memory

	m *metrics // histograms and request counters; nil in a bare Stats
}

func (s *Stats) observeUpload(n int, d time.Duration) {
	s.Flushes.Add(1)
	s.FlushBytes.Add(int64(n))
	s.UploadNanos.Add(int64(d))
	if s.m != nil {
		s.m.observeUpload(n, d)
	}
}

func (s *Stats) observeCommit(d time.Duration) {
	s.Commits.Add(1)
	s.CommitNanos.Add(int64(d))
	if s.m != nil {
		s.m.commitSeconds.Observe(d.Seconds())
	}
}

// observeFlushed records the time from cutting a flush to answering its
// producers.
func (s *Stats) observeFlushed(d time.Duration) {
	if s.m != nil {
		s.m.flushSeconds.Observe(d.Seconds())
	}
}
