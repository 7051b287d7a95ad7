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
// partitions (sub-benchmarks partitions=N), one segment per iteration, and
// of 1,000 partitions where every chunk is one idempotent producer's batch
// (idempotent-partitions=1000): what the flushes of clients with
// idempotence on (the default of franz-go and the Java client) commit,
// checked batch by batch.
// serverCPU, if not nil, returns the CPU time the store's server processes
// have used so far: each sub-benchmark then also reports server-cpu-ms/op,
// which moves less than wall time on a machine shared with other work.
// Each also reports the median commit (median-ms), which a few commits
// delayed by other work on the machine move less than the mean (ns/op).
func BenchCommitFlush(b *testing.B, s metastore.Store, serverCPU func() time.Duration) {
	ctx := context.Background()
	seq := 0
	for _, c := range []struct {
		n          int
		idempotent bool
	}{{1, false}, {100, false}, {1000, false}, {1000, true}} {
		n, name := c.n, fmt.Sprintf("partitions=%d", c.n)
		if c.idempotent {
			name = "idempotent-" + name
		}
		// b.Run calls the function several times while sizing b.N, so the
		// topic is created once, outside it, and the producer's sequence
		// carries on from run to run.
		top, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "bench-" + name, Partitions: int32(n)})
		if err != nil {
			b.Fatal(err)
		}
		var producerSeq int32
		b.Run(name, func(b *testing.B) {
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
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				seq++
				if c.idempotent {
					for p := range chunks {
						ch := chunks[p]
						chunks[p].Batches = []metastore.ProducerBatch{{
							Position: ch.Position, Length: ch.Length, OffsetCount: ch.OffsetCount,
							MinTimestamp: ch.MinTimestamp, MaxTimestamp: ch.MaxTimestamp,
							ProducerID: 1, BaseSequence: producerSeq,
						}}
					}
					producerSeq += 10
				}
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
				start := time.Now()
				if _, err := s.CommitFlush(ctx, f); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
				if serverCPU != nil {
					b.StopTimer()
					cpu += serverCPU() - before
					b.StartTimer()
				}
			}
			if serverCPU != nil {
				b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "server-cpu-ms/op")
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
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
