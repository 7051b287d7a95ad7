package postgres_test

import (
	"context"
	"testing"

	"github.com/siltstream/silt/metastore/metastoretest"
)

// BenchmarkCommitFlush: quote its figures with SILT_TEST_PG_DURABLE=1
// (fsync on, as in production); it logs the server's fsync setting.
func BenchmarkCommitFlush(b *testing.B) {
	s := newStore(b)
	var fsync string
	if err := s.Pool().QueryRow(context.Background(), "SHOW fsync").Scan(&fsync); err != nil {
		b.Fatal(err)
	}
	b.Logf("postgres fsync=%s", fsync)
	metastoretest.BenchCommitFlush(b, s)
}

func BenchmarkCommitOffsets(b *testing.B) {
	metastoretest.BenchCommitOffsets(b, newStore(b))
}
