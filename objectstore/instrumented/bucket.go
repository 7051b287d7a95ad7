package instrumented

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltstream/silt/objectstore"
)

// Operation label values.
const (
	opPut    = "put"
	opGet    = "get"
	opHead   = "head"
	opDelete = "delete"
	opList   = "list"
)

// Metrics are the collectors shared by every Bucket built from them.
type Metrics struct {
	requests *prometheus.CounterVec   // op
	errors   *prometheus.CounterVec   // op, kind
	duration *prometheus.HistogramVec // op
	bytes    *prometheus.CounterVec   // op (put, get)
}

// NewMetrics creates the bucket metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_s3_requests_total",
			Help: "Object-store (bucket) requests by operation, including failed ones; retries inside the driver count once.",
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_s3_request_errors_total",
			Help: "Object-store requests that returned an error, by operation and kind (not_found, invalid_range, access_denied, bucket_not_found, canceled, other).",
		}, []string{"op", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "silt_s3_request_duration_seconds",
			Help:    "Object-store request latency by operation, including the driver's retries.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1ms .. ~33s
		}, []string{"op"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_s3_transfer_bytes_total",
			Help: "Bytes written to (put) and read from (get) the object store.",
		}, []string{"op"}),
	}
	// Create every series up front so dashboards see zeros, not gaps.
	for _, op := range []string{opPut, opGet, opHead, opDelete, opList} {
		m.requests.WithLabelValues(op)
		m.duration.WithLabelValues(op)
		for _, kind := range errorKinds {
			m.errors.WithLabelValues(op, kind)
		}
	}
	m.bytes.WithLabelValues(opPut)
	m.bytes.WithLabelValues(opGet)
	for _, c := range []prometheus.Collector{m.requests, m.errors, m.duration, m.bytes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Bucket is an objectstore.Bucket that records metrics for every call to
// the bucket it wraps.
type Bucket struct {
	next objectstore.Bucket
	m    *Metrics
}

var _ objectstore.Bucket = (*Bucket)(nil)

// Wrap returns next, instrumented with m.
func Wrap(next objectstore.Bucket, m *Metrics) *Bucket { return &Bucket{next: next, m: m} }

// Unwrap returns the wrapped bucket.
func (b *Bucket) Unwrap() objectstore.Bucket { return b.next }

func (b *Bucket) observe(op string, start time.Time, err error) {
	b.m.requests.WithLabelValues(op).Inc()
	b.m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		b.m.errors.WithLabelValues(op, errorKind(err)).Inc()
	}
}

// errorKinds are the values errorKind returns.
var errorKinds = []string{"not_found", "invalid_range", "access_denied", "bucket_not_found", "canceled", "other"}

// errorKind classifies err into a small fixed set of label values.
func errorKind(err error) string {
	switch {
	case objectstore.IsNotFound(err):
		return "not_found"
	case objectstore.IsInvalidRange(err):
		return "invalid_range"
	case objectstore.IsAccessDenied(err):
		return "access_denied"
	case objectstore.IsBucketNotFound(err):
		return "bucket_not_found"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	default:
		return "other"
	}
}

// Put implements objectstore.Bucket.
func (b *Bucket) Put(ctx context.Context, key string, data []byte) error {
	start := time.Now()
	err := b.next.Put(ctx, key, data)
	b.observe(opPut, start, err)
	if err == nil {
		b.m.bytes.WithLabelValues(opPut).Add(float64(len(data)))
	}
	return err
}

// Get implements objectstore.Bucket.
func (b *Bucket) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	start := time.Now()
	data, err := b.next.Get(ctx, key, off, length)
	b.observe(opGet, start, err)
	b.m.bytes.WithLabelValues(opGet).Add(float64(len(data)))
	return data, err
}

// Head implements objectstore.Bucket.
func (b *Bucket) Head(ctx context.Context, key string) (objectstore.Attrs, error) {
	start := time.Now()
	a, err := b.next.Head(ctx, key)
	b.observe(opHead, start, err)
	return a, err
}

// Delete implements objectstore.Bucket.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := b.next.Delete(ctx, key)
	b.observe(opDelete, start, err)
	return err
}

// List implements objectstore.Bucket. The time counted includes the time
// fn takes, since List calls it while paging; an error fn returns to stop
// the listing is not counted as a bucket error.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(objectstore.Attrs) error) error {
	start := time.Now()
	var stopped error
	err := b.next.List(ctx, prefix, func(a objectstore.Attrs) error {
		if err := fn(a); err != nil {
			stopped = err
			return err
		}
		return nil
	})
	if stopped != nil && errors.Is(err, stopped) {
		b.observe(opList, start, nil)
	} else {
		b.observe(opList, start, err)
	}
	return err
}

// Close implements objectstore.Bucket.
func (b *Bucket) Close() error { return b.next.Close() }
