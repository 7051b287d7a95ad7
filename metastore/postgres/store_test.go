package postgres_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/siltstream/silt/internal/testenv"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/metastoretest"
	"github.com/siltstream/silt/metastore/postgres"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// newStore returns a store on a fresh, migrated database.
func newStore(t testing.TB) *postgres.Store {
	t.Helper()
	url := testenv.Postgres(t).NewDatabase(t)
	ctx := context.Background()
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		metastoretest.Run(t, func(t *testing.T) metastore.Store { return newStore(t) })
	})
}

func TestConcurrentMigrate(t *testing.T) {
	url := testenv.Postgres(t).NewDatabase(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = postgres.Migrate(ctx, url)
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Migrate #%d: %v", i, err)
		}
	}
	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != postgres.LatestVersion() || v <= 0 {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, postgres.LatestVersion())
	}
	// Migrating an up-to-date database is a no-op.
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
}

func TestOpenUnmigrated(t *testing.T) {
	url := testenv.Postgres(t).NewDatabase(t)
	_, err := postgres.Open(context.Background(), url)
	if !errors.Is(err, postgres.ErrSchemaOutdated) {
		t.Fatalf("Open on an unmigrated database: error = %v, want ErrSchemaOutdated", err)
	}
}
