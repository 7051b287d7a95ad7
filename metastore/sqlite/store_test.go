package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/metastoretest"
	"github.com/siltstream/silt/metastore/sqlite"
)

func newStore(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		metastoretest.Run(t, func(t *testing.T) metastore.Store { return newStore(t) })
	})
}

// TestConcurrentOpen opens one new file from several goroutines at once, as
// several processes might: each migration is applied once.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = sqlite.Migrate(ctx, path)
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Migrate #%d: %v", i, err)
		}
	}
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != sqlite.LatestVersion() {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, sqlite.LatestVersion())
	}
}
