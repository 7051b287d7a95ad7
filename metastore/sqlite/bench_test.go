package sqlite_test

import (
	"testing"

	"github.com/siltstream/silt/metastore/metastoretest"
)

func BenchmarkCommitFlush(b *testing.B) {
	metastoretest.BenchCommitFlush(b, newStore(b), nil) // in process: no server to measure
}

func BenchmarkCommitOffsets(b *testing.B) {
	metastoretest.BenchCommitOffsets(b, newStore(b))
}
