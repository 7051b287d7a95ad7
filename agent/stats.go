package agent

import (
	"sync/atomic"

	"github.com/siltstream/silt/ingest"
	"github.com/siltstream/silt/partition"
)

// Stats are the agent's cumulative counters, read by benchmarks, /status
// and the metrics endpoint: the write pipeline's, the read path's, and the
// handlers' own.
type Stats struct {
	ingest.Stats
	partition.ReadStats
	ProducedBytes  atomic.Int64
	ProducedBatchs atomic.Int64
	ProducedRecord atomic.Int64 // records in the produced batches
	FetchedBytes   atomic.Int64
	// FetchesWaiting counts long polls waiting now for data to arrive
	// (registered for wakeups, after a read found too little).
	FetchesWaiting atomic.Int64
}
