package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/siltstream/silt/internal/testenv"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/postgres"
	"github.com/siltstream/silt/metastore/sqlite"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/bucketurl"
	"github.com/siltstream/silt/objectstore/mem"
)

// A backend is a metadata store and a bucket kind the agent's black-box
// tests run on. One test body runs on every backend (forEachBackend), the
// way metastoretest and objectstoretest run one suite over every driver:
//
//   - sqlite-mem: a SQLite file in t.TempDir() and an in-memory bucket, the
//     embedded, process-free fast path.
//   - postgres-minio: a fresh database on the binary's Postgres server and
//     a fresh bucket on its MinIO server, through the s3 driver: the path a
//     cluster runs on.
type backend struct {
	name string
	// newStorage makes an empty store and bucket for one test.
	newStorage func(t *testing.T) storage
}

// storage is one test's metadata store location and bucket.
type storage struct {
	// openStore opens a new handle on the store, closed when t ends. Each
	// agent of a cluster opens its own, as separate processes would.
	openStore func(t *testing.T) metastore.Store
	bucket    objectstore.Bucket
}

var (
	sqliteMem = backend{name: "sqlite-mem", newStorage: func(t *testing.T) storage {
		path := filepath.Join(t.TempDir(), "meta.db")
		return storage{
			openStore: func(t *testing.T) metastore.Store {
				t.Helper()
				s, err := sqlite.Open(context.Background(), path)
				if err != nil {
					t.Fatalf("open sqlite store: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			},
			bucket: mem.New(),
		}
	}}

	postgresMinIO = backend{name: "postgres-minio", newStorage: func(t *testing.T) storage {
		t.Helper()
		dbURL := testenv.Postgres(t).NewDatabase(t)
		if err := postgres.Migrate(context.Background(), dbURL); err != nil {
			t.Fatal(err)
		}
		return storage{
			openStore: func(t *testing.T) metastore.Store {
				t.Helper()
				s, err := postgres.Open(context.Background(), dbURL)
				if err != nil {
					t.Fatalf("open postgres store: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			},
			bucket: minioBucket(t),
		}
	}}

	backends = []backend{sqliteMem, postgresMinIO}
)

// forEachBackend runs body as a subtest named after each backend
// (TestX/sqlite-mem, TestX/postgres-minio). Every body has its own store
// and bucket, so t and the subtests all run in parallel with other tests.
func forEachBackend(t *testing.T, body func(t *testing.T, bk backend)) {
	t.Parallel()
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			t.Parallel()
			body(t, bk)
		})
	}
}

var (
	minioEnvOnce sync.Once
	minioEnvErr  error
)

// minioBucket returns a fresh bucket on the binary's MinIO server, opened
// with the s3 driver as the agent's command line would open it, and closed
// when t ends.
func minioBucket(t *testing.T) objectstore.Bucket {
	t.Helper()
	b, _ := minioBucketNamed(t)
	return b
}

// minioBucketNamed is minioBucket, also naming the bucket, for tests that
// list it with minio-go, independently of Silt's own s3 driver.
func minioBucketNamed(t *testing.T) (objectstore.Bucket, string) {
	t.Helper()
	srv := testenv.MinIO(t)
	// The s3 driver takes credentials from the AWS default chain. t.Setenv
	// is refused in parallel tests, and every test here uses the same
	// server, so the binary's environment is set once and kept.
	minioEnvOnce.Do(func() {
		for _, kv := range srv.Env() {
			k, v, _ := strings.Cut(kv, "=")
			if err := os.Setenv(k, v); err != nil {
				minioEnvErr = fmt.Errorf("set %s for the s3 driver: %w", k, err)
				return
			}
		}
	})
	if minioEnvErr != nil {
		t.Fatal(minioEnvErr)
	}
	name, rawURL := srv.NewBucket(t)
	b, err := bucketurl.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatalf("open MinIO bucket: %v", err)
	}
	t.Cleanup(func() { b.Close() }) // after the agents using it (cleanups run last first)
	return b, name
}
