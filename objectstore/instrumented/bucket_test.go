package instrumented_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltstream/silt/internal/promtest"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/instrumented"
	"github.com/siltstream/silt/objectstore/mem"
	"github.com/siltstream/silt/objectstore/objectstoretest"
)

func TestAcceptance(t *testing.T) {
	objectstoretest.Run(t, func(t *testing.T) objectstore.Bucket {
		m, err := instrumented.NewMetrics(prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		return instrumented.Wrap(mem.New(), m)
	})
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := instrumented.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b := instrumented.Wrap(mem.New(), m)
	ctx := context.Background()
	if err := b.Put(ctx, "a/1", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "a/1", 1, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "a/missing", 0, -1); !objectstore.IsNotFound(err) {
		t.Fatalf("Get missing: %v", err)
	}
	stop := errors.New("stop")
	if err := b.List(ctx, "a/", func(objectstore.Attrs) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("List: %v", err)
	}

	want := map[string]float64{
		`silt_s3_requests_total{op="put"}`:                        1,
		`silt_s3_requests_total{op="get"}`:                        2,
		`silt_s3_requests_total{op="list"}`:                       1,
		`silt_s3_requests_total{op="head"}`:                       0,
		`silt_s3_request_errors_total{kind="not_found",op="get"}`: 1,
		`silt_s3_transfer_bytes_total{op="put"}`:                  5,
		`silt_s3_transfer_bytes_total{op="get"}`:                  3,
		`silt_s3_request_duration_seconds_count{op="put"}`:        1,
		`silt_s3_request_duration_seconds_count{op="list"}`:       1,
	}
	got := promtest.Gather(t, reg)
	for series, v := range want {
		if got[series] != v {
			t.Errorf("%s = %v, want %v", series, got[series], v)
		}
	}
	if got[`silt_s3_request_errors_total{kind="other",op="list"}`] != 0 {
		t.Error("a List stopped by its callback counted as an error")
	}
}
