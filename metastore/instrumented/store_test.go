package instrumented_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltstream/silt/internal/promtest"
	"github.com/siltstream/silt/internal/testenv"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/instrumented"
	"github.com/siltstream/silt/metastore/metastoretest"
	"github.com/siltstream/silt/metastore/postgres"
	"github.com/siltstream/silt/metastore/sqlite"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func newMetrics(t testing.TB) (*instrumented.Metrics, *prometheus.Registry) {
	reg := prometheus.NewPedanticRegistry()
	m, err := instrumented.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func openSQLite(t testing.TB) metastore.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The decorator must keep every behaviour of the store it wraps.
func TestConformance(t *testing.T) {
	metastoretest.Run(t, func(t *testing.T) metastore.Store {
		m, _ := newMetrics(t)
		return instrumented.Wrap(openSQLite(t), m)
	})
}

func TestMetrics(t *testing.T) {
	m, reg := newMetrics(t)
	s := instrumented.Wrap(openSQLite(t), m)
	ctx := context.Background()
	if _, err := s.Topic(ctx, "missing"); err == nil {
		t.Fatal("Topic(missing) succeeded")
	}
	if _, err := s.SchemaVersion(ctx); err != nil {
		t.Fatal(err)
	}
	got := promtest.Gather(t, reg)
	for series, want := range map[string]float64{
		`silt_metastore_request_duration_seconds_count{op="topic"}`:          1,
		`silt_metastore_request_duration_seconds_count{op="schema_version"}`: 1,
		`silt_metastore_request_duration_seconds_count{op="commit_flush"}`:   0,
		`silt_metastore_request_errors_total{op="topic"}`:                    1,
		`silt_metastore_request_errors_total{op="schema_version"}`:           0,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
	if _, ok := s.(metastore.CommitWatcher); ok {
		t.Error("a wrapped sqlite store claims to watch commits; sqlite does not")
	}
}

// The agent finds out about other agents' commits through CommitWatcher:
// wrapping a postgres store must keep it.
func TestKeepsCommitWatcher(t *testing.T) {
	url := testenv.Postgres(t).NewDatabase(t)
	ctx := context.Background()
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	pg, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	m, _ := newMetrics(t)
	s := instrumented.Wrap(pg, m)
	if _, ok := s.(metastore.CommitWatcher); !ok {
		t.Fatal("a wrapped postgres store lost CommitWatcher")
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != postgres.LatestVersion() {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}
}
