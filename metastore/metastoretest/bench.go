package metastoretest

import (
	"context"
	"fmt"
	"testing"

	"github.com/siltstream/silt/metastore"
)

// BenchCommitFlush measures CommitFlush of flushes touching 1, 100 and 1,000
// partitions (sub-benchmarks partitions=N), one segment per iteration.
func BenchCommitFlush(b *testing.B, s metastore.Store) {
	ctx := context.Background()
	seq := 0
	for _, n := range []int{1, 100, 1000} {
		// b.Run calls the function several times while sizing b.N, so the
		// topic is created once, outside it.
		top, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: fmt.Sprintf("bench-%d", n), Partitions: int32(n)})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("partitions=%d", n), func(b *testing.B) {
			chunks := make([]metastore.Chunk, n)
			for p := range chunks {
				chunks[p] = metastore.Chunk{
					TopicPartition: metastore.TopicPartition{Topic: top.ID, Partition: int32(p)},
					Position:       int64(p) * 4096,
					Length:         4096,
					OffsetCount:    10,
					BatchCount:     1,
					MinTimestamp:   1700000000000,
					MaxTimestamp:   1700000000100,
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				seq++
				f := metastore.Flush{
					SegmentKey: fmt.Sprintf("bench/%d", seq),
					AgentID:    "bench",
					Size:       int64(n) * 4096,
					Chunks:     chunks,
				}
				b.StopTimer() // the upload is recorded before the upload, not in the commit
				if err := s.RecordUpload(ctx, f.SegmentKey, f.AgentID); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := s.CommitFlush(ctx, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
