package main

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/siltstream/silt/metastore"
	metastoreinstr "github.com/siltstream/silt/metastore/instrumented"
	"github.com/siltstream/silt/objectstore"
	bucketinstr "github.com/siltstream/silt/objectstore/instrumented"
)

// newMetricsRegistry returns the process's own registry (nothing is
// registered on the global default one) with the Go runtime and process
// collectors and silt_build_info.
func newMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "silt_build_info",
			Help:        "Always 1; the version label says which build is running.",
			ConstLabels: prometheus.Labels{"version": versionString()},
		}, func() float64 { return 1 }),
	)
	return reg
}

// metricsHandler serves reg; a collector that fails is reported in the
// logs and the rest is still served.
func metricsHandler(reg *prometheus.Registry, errorLog promhttp.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      errorLog,
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// instrument wraps the store and the bucket driver with their metrics,
// registered on reg. The bucket is wrapped below the agent's cache, so
// silt_s3_* counts real bucket requests.
func instrument(reg prometheus.Registerer, store metastore.Store, bucket objectstore.Bucket) (metastore.Store, objectstore.Bucket, error) {
	sm, err := metastoreinstr.NewMetrics(reg)
	if err != nil {
		return nil, nil, fmt.Errorf("register metastore metrics: %w", err)
	}
	bm, err := bucketinstr.NewMetrics(reg)
	if err != nil {
		return nil, nil, fmt.Errorf("register bucket metrics: %w", err)
	}
	return metastoreinstr.Wrap(store, sm), bucketinstr.Wrap(bucket, bm), nil
}
