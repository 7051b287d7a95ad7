package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the pipeline's histograms, observed as flushes happen. No
// series is labelled by topic or partition.
type Metrics struct {
	flushBytes    prometheus.Histogram
	flushSeconds  prometheus.Histogram
	uploadSeconds prometheus.Histogram
	commitSeconds prometheus.Histogram
}

func newMetrics() *Metrics {
	return &Metrics{
		flushBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "silt_flush_bytes",
			Help:    "Size of each flushed segment object.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10), // 1KiB .. 256MiB
		}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "silt_flush_duration_seconds",
			Help:    "Time from cutting the write buffer to answering the flush's producers: build, upload, waiting for earlier commits, commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		uploadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "silt_flush_upload_duration_seconds",
			Help:    "Time to put a segment object in the bucket, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "silt_commit_duration_seconds",
			Help:    "Time to commit a flush in the metadata store, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
}

// Collectors lists the histograms for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.flushBytes, m.flushSeconds, m.uploadSeconds, m.commitSeconds}
}
