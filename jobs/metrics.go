package jobs

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the data lifecycle's counters and gauges. Retention's and
// the collector's move on the agent holding the janitor lease; other
// agents export zeros (sum the counters across agents, take the maximum of
// those gauges). Compaction's move on every agent, for the partitions it
// leads (sum them all). No series is
// labelled by topic or partition.
type Metrics struct {
	retentionBytes   prometheus.Counter
	gcDeletedObjects prometheus.Counter
	gcDeletedBytes   prometheus.Counter
	gcBacklogObjects prometheus.Gauge
	gcBacklogBytes   prometheus.Gauge
	bucketObjects    prometheus.Gauge
	bucketBytes      prometheus.Gauge

	compactionRead     prometheus.Counter
	compactionWritten  prometheus.Counter
	compactionSegments prometheus.Counter
	compactionAwaiting prometheus.Gauge

	cleanerSegments prometheus.Counter
	cleanerRemoved  prometheus.Counter
}

// NewMetrics creates the collectors; register them with Collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		retentionBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_retention_expired_bytes_total",
			Help: "Bytes of index rows removed by retention (retention.ms, retention.bytes); their objects are deleted by the garbage collector once unreferenced and past gc.grace.",
		}),
		gcDeletedObjects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_gc_deleted_objects_total",
			Help: "Objects deleted from the bucket by the garbage collector (orphaned uploads, expired and deleted topics' segments).",
		}),
		gcDeletedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_gc_deleted_bytes_total",
			Help: "Bytes of the objects the garbage collector deleted, as recorded at commit (orphans count 0).",
		}),
		gcBacklogObjects: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "silt_gc_backlog_objects",
			Help: "Objects doomed and awaiting deletion (gc.grace not yet passed, or deletion failing), as of the last collection on this agent.",
		}),
		bucketObjects: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "silt_bucket_objects",
			Help: "Objects Silt believes the bucket holds for it (uploads recorded and not yet deleted: in flight, committed, awaiting deletion), as of the last collection on this agent.",
		}),
		bucketBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "silt_bucket_bytes",
			Help: "Bytes of the objects Silt believes the bucket holds for it, as recorded at commit (uploads in flight count 0), as of the last collection on this agent.",
		}),
		gcBacklogBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "silt_gc_backlog_bytes",
			Help: "Bytes of the objects awaiting deletion, as recorded at commit, as of the last collection on this agent.",
		}),
		compactionRead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_compaction_read_bytes_total",
			Help: "Bytes of write-path (level 0) segments compaction read from the bucket (or the block cache) to rewrite.",
		}),
		compactionWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_compaction_written_bytes_total",
			Help: "Bytes of compacted per-partition segments uploaded, including those whose swap was refused.",
		}),
		compactionSegments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_compaction_segments_total",
			Help: "Compacted segments swapped into the index.",
		}),
		compactionAwaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "silt_compaction_awaiting_bytes",
			Help: "Bytes of write-path (level 0) index rows awaiting compaction in the partitions this agent compacts, as found by its last pass before it compacted them (each agent compacts the partitions it leads: sum across agents).",
		}),
		cleanerSegments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_keyed_compaction_segments_total",
			Help: "Cleaned segments swapped into the index by keyed compaction (cleanup.policy=compact).",
		}),
		cleanerRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_keyed_compaction_removed_records_total",
			Help: "Records removed by keyed compaction: superseded by a later record of their key, tombstones past their delete horizon, records without a key, aborted transactions' records.",
		}),
	}
}

// Collectors lists the collectors for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.retentionBytes, m.gcDeletedObjects, m.gcDeletedBytes, m.gcBacklogObjects, m.gcBacklogBytes, m.bucketObjects, m.bucketBytes,
		m.compactionRead, m.compactionWritten, m.compactionSegments, m.compactionAwaiting, m.cleanerSegments, m.cleanerRemoved}
}
