package metastoretest

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siltstream/silt/metastore"
)

// BenchCommitFlush measures CommitFlush of flushes touching 1, 100 and 1,000
// partitions (sub-benchmarks partitions=N), one segment per iteration.
// serverCPU, if not nil, returns the CPU time the store's server processes
// have used so far: each sub-benchmark then also reports server-cpu-ms/op,
// which moves less than wall time on a machine shared with other work.
func BenchCommitFlush(b *testing.B, s metastore.Store, serverCPU func() time.Duration) {
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
			var cpu time.Duration
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
				var before time.Duration
				if serverCPU != nil {
					before = serverCPU()
				}
				b.StartTimer()
				if _, err := s.CommitFlush(ctx, f); err != nil {
					b.Fatal(err)
				}
				if serverCPU != nil {
					b.StopTimer()
					cpu += serverCPU() - before
					b.StartTimer()
				}
			}
			if serverCPU != nil {
				b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "server-cpu-ms/op")
			}
		})
	}
}

// BenchCommitOffsets measures CommitOffsets of 5 partitions by parallel
// committers, each its own group: groups spread over the partitions of
// __consumer_offsets, and all in one partition (whose sequence every
// commit then takes in turn).
func BenchCommitOffsets(b *testing.B, s metastore.Store) {
	ctx := context.Background()
	offsets := make([]metastore.CommittedOffset, 5)
	for p := range offsets {
		offsets[p] = metastore.CommittedOffset{Topic: "bench", Partition: int32(p), LeaderEpoch: -1}
	}
	for _, layout := range []string{"spread", "one-partition"} {
		b.Run("groups="+layout, func(b *testing.B) {
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				n := next.Add(1)
				group := fmt.Sprintf("bench-%s-%d", layout, n)
				for i := 0; layout == "one-partition" && metastore.OffsetsPartition(group) != 0; i++ {
					group = fmt.Sprintf("bench-%s-%d-%d", layout, n, i)
				}
				offs := slices.Clone(offsets)
				for i := int64(0); pb.Next(); i++ {
					for p := range offs {
						offs[p].Offset = i
					}
					if err := s.CommitOffsets(ctx, group, offs); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
