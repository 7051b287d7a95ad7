package postgres_test

import (
	"context"
	"errors"
	"fmt"
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

// TestRetentionWalksSeveralScans: time retention walks the index from the
// log start a batch of rows at a time; the answer must not depend on where
// the batches end.
func TestRetentionWalksSeveralScans(t *testing.T) {
	defer postgres.SetRetentionScanRows(2)()
	s := newStore(t)
	ctx := context.Background()
	top, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "walk", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	tp := metastore.TopicPartition{Topic: top.ID}
	for i := int64(1); i <= 5; i++ { // rows at offsets 0..4, max timestamps 1000..5000
		key := fmt.Sprintf("seg-%d", i)
		if err := s.RecordUpload(ctx, key, "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CommitFlush(ctx, metastore.Flush{SegmentKey: key, AgentID: "a", Size: 10, Chunks: []metastore.Chunk{{
			TopicPartition: tp, Length: 10, OffsetCount: 1, BatchCount: 1, MaxTimestamp: 1000 * i,
		}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ before, want int64 }{{2500, 2}, {4500, 4}, {9000, 5}} {
		res, err := s.ApplyRetention(ctx, tp, metastore.RetentionPolicy{ExpireBefore: c.before, MaxBytes: -1})
		if err != nil || res.LogStartOffset != c.want {
			t.Fatalf("expire before %d: %+v, %v; want log start %d", c.before, res, err, c.want)
		}
	}
}
