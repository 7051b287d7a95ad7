package jobs

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the data lifecycle's counters and gauges. They move on the
// agent holding the janitor lease; other agents export zeros (sum the
// counters across agents, take the maximum of the gauges). No series is
// labelled by topic or partition.
type Metrics struct {
	retentionBytes   prometheus.Counter
	gcDeletedObjects prometheus.Counter
	gcDeletedBytes   prometheus.Counter
	gcBacklogObjects prometheus.Gauge
	gcBacklogBytes   prometheus.Gauge
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
		gcBacklogBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "silt_gc_backlog_bytes",
			Help: "Bytes of the objects awaiting deletion, as recorded at commit, as of the last collection on this agent.",
		}),
	}
}

// Collectors lists the collectors for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.retentionBytes, m.gcDeletedObjects, m.gcDeletedBytes, m.gcBacklogObjects, m.gcBacklogBytes}
}
