package metastoretest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/siltstream/silt/metastore"
)

// pbatch is an idempotent batch of cnt records at position pos.
func pbatch(pos, cnt int64, pid int64, epoch int16, seq int32) metastore.ProducerBatch {
	return metastore.ProducerBatch{Position: pos, Length: 100 * cnt, OffsetCount: cnt, MinTimestamp: 1000, MaxTimestamp: 2000 + pos,
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}
}

// batchChunk builds a chunk of tp from batches laid out back to back from 0.
func batchChunk(tp metastore.TopicPartition, bs ...metastore.ProducerBatch) metastore.Chunk {
	c := metastore.Chunk{TopicPartition: tp, Batches: bs}
	pos := int64(0)
	for i := range bs {
		c.Batches[i].Position = pos
		pos += bs[i].Length
		c.Length += bs[i].Length
		c.OffsetCount += bs[i].OffsetCount
		c.BatchCount++
	}
	return c
}

func commitBatches(t *testing.T, s metastore.Store, key string, chunks ...metastore.Chunk) metastore.FlushResult {
	t.Helper()
	ctx := ctxFor(t)
	if err := s.RecordUpload(ctx, key, "agent-1"); err != nil {
		t.Fatal(err)
	}
	res, err := s.CommitFlush(ctx, metastore.Flush{SegmentKey: key, AgentID: "agent-1", Size: 1 << 20, Chunks: chunks})
	if err != nil {
		t.Fatalf("CommitFlush(%s): %v", key, err)
	}
	return res
}

func wantResults(t *testing.T, what string, got []metastore.BatchResult, want ...metastore.BatchResult) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d results, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i].BaseOffset != want[i].BaseOffset || got[i].Duplicate != want[i].Duplicate || !errors.Is(got[i].Err, want[i].Err) {
			t.Fatalf("%s: batch %d = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

var (
	fenced = metastore.BatchResult{BaseOffset: -1, Err: metastore.ErrProducerFenced}
	gap    = metastore.BatchResult{BaseOffset: -1, Err: metastore.ErrOutOfOrderSequence}
)

func at(base int64) metastore.BatchResult { return metastore.BatchResult{BaseOffset: base} }
func dup(base int64) metastore.BatchResult {
	return metastore.BatchResult{BaseOffset: base, Duplicate: true}
}

// testIdempotentProducers: sequence checks inside CommitFlush — duplicates
// of recent batches answered with their first offsets and not appended,
// gaps and stale epochs refused, only accepted batches indexed.
func testIdempotentProducers(t *testing.T, s metastore.Store) {
	top := createTopic(t, s, "idem", 2)
	tp := metastore.TopicPartition{Topic: top.ID, Partition: 0}
	const pid = 4242

	r := commitBatches(t, s, "i1", batchChunk(tp, pbatch(0, 3, pid, 0, 0), pbatch(0, 2, -1, -1, -1)))
	wantResults(t, "first flush", r.Batches[0], at(0), at(3))
	if es := index(t, s, tp, 0); len(es) != 1 || es[0].LastOffset != 4 || es[0].BatchCount != 2 {
		t.Fatalf("contiguous accepted batches should make one row: %+v", es)
	}

	r = commitBatches(t, s, "i2", batchChunk(tp, pbatch(0, 3, pid, 0, 0), pbatch(0, 2, pid, 0, 3)))
	wantResults(t, "retry + next", r.Batches[0], dup(0), at(5))
	if r.BaseOffsets[0] != 5 {
		t.Fatalf("chunk base offset %d, want 5 (first accepted batch)", r.BaseOffsets[0])
	}
	es := index(t, s, tp, 5)
	if len(es) != 1 || es[0].BaseOffset != 5 || es[0].LastOffset != 6 || es[0].Position != 300 || es[0].Length != 200 {
		t.Fatalf("only the new batch is indexed: %+v", es)
	}

	r = commitBatches(t, s, "i3", batchChunk(tp,
		pbatch(0, 1, pid, 0, 9),  // gap
		pbatch(0, 1, pid, 1, 0),  // new epoch from 0
		pbatch(0, 1, pid, 0, 5),  // stale epoch
		pbatch(0, 1, pid, 2, 4),  // newer epoch not from 0
		pbatch(0, 1, pid, 1, 1),  // next in epoch 1
		pbatch(0, 1, 7777, 3, 9), // unknown producer: accepted
	))
	wantResults(t, "mixed", r.Batches[0], gap, at(7), fenced, gap, at(8), at(9))
	if st := partitionStates(t, s, top.ID); st[0].HighWatermark != 10 {
		t.Fatalf("hw = %d, want 10", st[0].HighWatermark)
	}
	es = index(t, s, tp, 7)
	if len(es) != 2 || es[0].BaseOffset != 7 || es[0].LastOffset != 7 || es[1].BaseOffset != 8 || es[1].LastOffset != 9 {
		t.Fatalf("rows around rejected batches: %+v", es)
	}

	// A retried commit answers accepted batches with their offsets.
	ctx := ctxFor(t)
	again, err := s.CommitFlush(ctx, metastore.Flush{SegmentKey: "i3", AgentID: "agent-1", Size: 1 << 20, Chunks: []metastore.Chunk{batchChunk(tp,
		pbatch(0, 1, pid, 0, 9), pbatch(0, 1, pid, 1, 0), pbatch(0, 1, pid, 0, 5), pbatch(0, 1, pid, 2, 4), pbatch(0, 1, pid, 1, 1), pbatch(0, 1, 7777, 3, 9))}})
	if err != nil {
		t.Fatal(err)
	}
	if g := again.Batches[0]; g[1].BaseOffset != 7 || g[4].BaseOffset != 8 || g[5].BaseOffset != 9 || !errors.Is(g[0].Err, metastore.ErrVerdictUnknown) {
		t.Fatalf("retried commit results: %+v", g)
	}

	// The window is the last five batches.
	tp1 := metastore.TopicPartition{Topic: top.ID, Partition: 1}
	var bs []metastore.ProducerBatch
	for i := int32(0); i < 6; i++ {
		bs = append(bs, pbatch(0, 1, pid, 0, i))
	}
	commitBatches(t, s, "w1", batchChunk(tp1, bs...))
	r = commitBatches(t, s, "w2", batchChunk(tp1, pbatch(0, 1, pid, 0, 1), pbatch(0, 1, pid, 0, 0)))
	wantResults(t, "window", r.Batches[0], dup(1), gap)

	// Expired state: the producer is accepted wherever it resumes.
	if n, err := s.ExpireProducers(ctx, time.Now().Add(time.Hour)); err != nil || n == 0 {
		t.Fatalf("ExpireProducers = %d, %v", n, err)
	}
	r = commitBatches(t, s, "w3", batchChunk(tp1, pbatch(0, 1, pid, 0, 40)))
	wantResults(t, "after expiry", r.Batches[0], at(6))
}

// testIdempotentConcurrent: two committers (two agents) commit the same
// idempotent batch to one partition at once: exactly one appends it.
func testIdempotentConcurrent(t *testing.T, s metastore.Store) {
	top := createTopic(t, s, "idemc", 1)
	tp := metastore.TopicPartition{Topic: top.ID, Partition: 0}
	ctx := ctxFor(t)
	for round := int32(0); round < 10; round++ {
		var wg sync.WaitGroup
		results := make([]metastore.BatchResult, 2)
		for a := 0; a < 2; a++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := fmt.Sprintf("c-%d-%d", round, a)
				if err := s.RecordUpload(ctx, key, "agent"); err != nil {
					t.Error(err)
					return
				}
				res, err := s.CommitFlush(ctx, metastore.Flush{SegmentKey: key, AgentID: "agent", Size: 100,
					Chunks: []metastore.Chunk{batchChunk(tp, pbatch(0, 1, 99, 0, round))}})
				if err != nil {
					t.Error(err)
					return
				}
				results[a] = res.Batches[0][0]
			}()
		}
		wg.Wait()
		if results[0].Duplicate == results[1].Duplicate || results[0].BaseOffset != results[1].BaseOffset || results[0].Err != nil || results[1].Err != nil {
			t.Fatalf("round %d: %+v — want one append and one duplicate with the same offset", round, results)
		}
	}
	if st := partitionStates(t, s, top.ID); st[0].HighWatermark != 10 {
		t.Fatalf("hw = %d after 10 rounds, want 10", st[0].HighWatermark)
	}
}

func testProducerIDs(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	const workers, each = 8, 25
	ids := make(chan int64, workers*each)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id, err := s.AllocateProducerID(ctx)
				if err != nil {
					errs <- err
					return
				}
				ids <- id
			}
		}()
	}
	wg.Wait()
	close(ids)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for id := range ids {
		if id < 0 {
			t.Fatalf("negative producer id %d", id)
		}
		if seen[id] {
			t.Fatalf("producer id %d returned twice", id)
		}
		seen[id] = true
	}
}
