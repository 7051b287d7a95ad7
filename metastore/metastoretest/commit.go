package metastoretest

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/siltstream/silt/metastore"
)

func testCommitFlush(t *testing.T, s metastore.Store) {
	a := createTopic(t, s, "a", 2)
	b := createTopic(t, s, "b", 1)
	c1 := metastore.Chunk{
		TopicPartition: metastore.TopicPartition{Topic: b.ID, Partition: 0},
		Length:         300, OffsetCount: 10, BatchCount: 2, MinTimestamp: 11, MaxTimestamp: 19,
	}
	res := commit(t, s, "seg-1", c1, chunk(a.ID, 1, 4), chunk(a.ID, 0, 3))
	if want := []int64{0, 0, 0}; !reflect.DeepEqual(res.BaseOffsets, want) {
		t.Fatalf("first flush base offsets = %v, want %v", res.BaseOffsets, want)
	}
	res = commit(t, s, "seg-2", chunk(a.ID, 0, 2), chunk(b.ID, 0, 1), chunk(a.ID, 1, 6))
	if want := []int64{3, 10, 4}; !reflect.DeepEqual(res.BaseOffsets, want) {
		t.Fatalf("second flush base offsets = %v, want %v", res.BaseOffsets, want)
	}
	if got, want := highWatermarks(t, s, a.ID), []int64{5, 10}; !reflect.DeepEqual(got, want) {
		t.Fatalf("high watermarks of a = %v, want %v", got, want)
	}
	es := index(t, s, metastore.TopicPartition{Topic: b.ID}, 0)
	want := []metastore.IndexEntry{
		{TopicPartition: c1.TopicPartition, BaseOffset: 0, LastOffset: 9, SegmentKey: "seg-1", Position: 0, Length: 300, BatchCount: 2, MinTimestamp: 11, MaxTimestamp: 19},
		{TopicPartition: c1.TopicPartition, BaseOffset: 10, LastOffset: 10, SegmentKey: "seg-2", Position: 200, Length: 100, BatchCount: 1, MinTimestamp: 1000, MaxTimestamp: 2000},
	}
	if !reflect.DeepEqual(es, want) {
		t.Fatalf("Index(b/0) =\n%+v\nwant\n%+v", es, want)
	}

	// A chunk with listed batches between plain ones, out of partition
	// order: every chunk's base offset comes back in its place, and the
	// segment's rows are found from it.
	b0 := metastore.TopicPartition{Topic: b.ID}
	res = commit(t, s, "seg-3", chunk(a.ID, 1, 2), batchChunk(b0, pbatch(0, 2, -1, -1, -1)), chunk(a.ID, 0, 1))
	if want := []int64{10, 11, 5}; !reflect.DeepEqual(res.BaseOffsets, want) {
		t.Fatalf("mixed flush base offsets = %v, want %v", res.BaseOffsets, want)
	}
	wantResults(t, "mixed flush", res.Batches[1], at(11))
	ctx := ctxFor(t)
	rows, err := s.IndexBySegment(ctx, "seg-3")
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[metastore.TopicPartition][2]int64)
	for _, r := range rows {
		got[r.TopicPartition] = [2]int64{r.BaseOffset, r.LastOffset}
	}
	if want := map[metastore.TopicPartition][2]int64{
		{Topic: a.ID, Partition: 0}: {5, 5}, {Topic: a.ID, Partition: 1}: {10, 11}, b0: {11, 12},
	}; len(rows) != 3 || !reflect.DeepEqual(got, want) {
		t.Fatalf("IndexBySegment(seg-3) = %+v, want %v", rows, want)
	}

	// An empty flush commits the segment and assigns nothing.
	if err := s.RecordUpload(ctx, "seg-empty", "agent-1"); err != nil {
		t.Fatal(err)
	}
	res, err = s.CommitFlush(ctx, metastore.Flush{SegmentKey: "seg-empty", AgentID: "agent-1"})
	if err != nil || len(res.BaseOffsets) != 0 {
		t.Fatalf("empty CommitFlush = %+v, %v", res, err)
	}
	orphans, err := s.Orphans(ctx, time.Now().Add(time.Hour))
	if err != nil || len(orphans) != 0 {
		t.Fatalf("Orphans after commits = %+v, %v; want none", orphans, err)
	}
}

// testCommitFlushConcurrent runs committers whose flushes overlap on
// partitions in different orders: every offset must be assigned exactly once,
// contiguously, with no deadlock.
func testCommitFlushConcurrent(t *testing.T, s metastore.Store) {
	const (
		committers = 8
		flushes    = 25
		partitions = 6
	)
	ctx := ctxFor(t)
	x := createTopic(t, s, "x", partitions)
	y := createTopic(t, s, "y", 2)
	type assigned struct {
		tp          metastore.TopicPartition
		base, count int64
	}
	var (
		mu   sync.Mutex
		all  []assigned
		wg   sync.WaitGroup
		errs = make(chan error, committers)
	)
	for w := 0; w < committers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for i := 0; i < flushes; i++ {
				var tps []metastore.TopicPartition
				for _, p := range rng.Perm(partitions)[:2+rng.Intn(3)] {
					tps = append(tps, metastore.TopicPartition{Topic: x.ID, Partition: int32(p)})
				}
				tps = append(tps, metastore.TopicPartition{Topic: y.ID, Partition: int32(rng.Intn(2))})
				rng.Shuffle(len(tps), func(i, j int) { tps[i], tps[j] = tps[j], tps[i] })
				f := metastore.Flush{SegmentKey: fmt.Sprintf("seg-%d-%d", w, i), AgentID: fmt.Sprintf("agent-%d", w)}
				for _, tp := range tps {
					c := chunk(tp.Topic, tp.Partition, 1+rng.Int63n(20))
					c.Position = f.Size
					f.Size += c.Length
					f.Chunks = append(f.Chunks, c)
				}
				if err := s.RecordUpload(ctx, f.SegmentKey, f.AgentID); err != nil {
					errs <- err
					return
				}
				res, err := s.CommitFlush(ctx, f)
				if err != nil {
					errs <- fmt.Errorf("CommitFlush(%s): %w", f.SegmentKey, err)
					return
				}
				mu.Lock()
				for j, c := range f.Chunks {
					all = append(all, assigned{c.TopicPartition, res.BaseOffsets[j], c.OffsetCount})
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	byTP := map[metastore.TopicPartition][]assigned{}
	for _, a := range all {
		byTP[a.tp] = append(byTP[a.tp], a)
	}
	check := func(id metastore.TopicID, n int) {
		hws := highWatermarks(t, s, id)
		for p := 0; p < n; p++ {
			tp := metastore.TopicPartition{Topic: id, Partition: int32(p)}
			as := byTP[tp]
			sort.Slice(as, func(i, j int) bool { return as[i].base < as[j].base })
			var next int64
			for _, a := range as {
				if a.base != next {
					t.Fatalf("%x/%d: chunk at base %d, want %d (offsets assigned twice or skipped)", id[:2], p, a.base, next)
				}
				next += a.count
			}
			if hws[p] != next {
				t.Fatalf("%x/%d: high watermark %d, want the sum of offset counts %d", id[:2], p, hws[p], next)
			}
			es := index(t, s, tp, 0)
			if len(es) != len(as) {
				t.Fatalf("%x/%d: %d index rows, want %d", id[:2], p, len(es), len(as))
			}
			for i, e := range es {
				if e.BaseOffset != as[i].base || e.LastOffset != as[i].base+as[i].count-1 {
					t.Fatalf("%x/%d: index row %d = [%d, %d], want [%d, %d]", id[:2], p, i, e.BaseOffset, e.LastOffset, as[i].base, as[i].base+as[i].count-1)
				}
			}
		}
	}
	check(x.ID, partitions)
	check(y.ID, 2)
}

func testCommitFlushUnknownPartitions(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "t", 2)
	gone := createTopic(t, s, "gone", 1)
	commit(t, s, "seg-0", chunk(top.ID, 0, 3), chunk(top.ID, 1, 4))
	if err := s.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	never := metastore.TopicPartition{Topic: metastore.TopicID{0xee}, Partition: 0}
	f := metastore.Flush{SegmentKey: "seg-bad", AgentID: "agent-1", Size: 500, Chunks: []metastore.Chunk{
		chunk(top.ID, 0, 1),
		chunk(top.ID, 7, 1), // partition beyond the topic's count
		chunk(gone.ID, 0, 1),
		chunk(top.ID, 1, 1),
		chunk(never.Topic, never.Partition, 1),
	}}
	if err := s.RecordUpload(ctx, f.SegmentKey, f.AgentID); err != nil {
		t.Fatal(err)
	}
	_, err := s.CommitFlush(ctx, f)
	var uerr *metastore.UnknownPartitionsError
	if !errors.As(err, &uerr) {
		t.Fatalf("CommitFlush with unknown partitions: error = %v, want *UnknownPartitionsError", err)
	}
	want := []metastore.TopicPartition{
		{Topic: top.ID, Partition: 7},
		{Topic: gone.ID, Partition: 0},
		never,
	}
	if !reflect.DeepEqual(uerr.Partitions, want) {
		t.Fatalf("unknown partitions = %+v, want %+v (in flush order)", uerr.Partitions, want)
	}
	if got := highWatermarks(t, s, top.ID); !reflect.DeepEqual(got, []int64{3, 4}) {
		t.Fatalf("high watermarks after a failed flush = %v, want unchanged [3 4]", got)
	}
	for p := int32(0); p < 2; p++ {
		for _, e := range index(t, s, metastore.TopicPartition{Topic: top.ID, Partition: p}, 0) {
			if e.SegmentKey == "seg-bad" {
				t.Fatalf("failed flush left an index row: %+v", e)
			}
		}
	}
	orphans, err := s.Orphans(ctx, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(orphans) != 1 || orphans[0].Key != "seg-bad" {
		t.Fatalf("Orphans after a failed flush = %+v, want seg-bad", orphans)
	}

	// Dropping the unknown chunks, as the caller would, commits the rest.
	f.Chunks = []metastore.Chunk{f.Chunks[0], f.Chunks[3]}
	res, err := s.CommitFlush(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{3, 4}; !reflect.DeepEqual(res.BaseOffsets, want) {
		t.Fatalf("retried flush base offsets = %v, want %v", res.BaseOffsets, want)
	}
}

// testRetriedCommitAfterDelete: a commit whose reply was lost is retried
// after one of its topics was deleted. The retry must not fail for good
// (that would wedge the writer's ordered commits): the deleted topic's
// chunks are reported as unknown partitions, and without them the retry
// answers the first commit's offsets. (Issue 11, item 8.)
func testRetriedCommitAfterDelete(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	keep := createTopic(t, s, "keep", 1)
	gone := createTopic(t, s, "gone", 1)
	chunks := []metastore.Chunk{chunk(keep.ID, 0, 2), chunk(gone.ID, 0, 3)}
	first := commit(t, s, "seg-lost-reply", chunks...)
	if err := s.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	f := metastore.Flush{SegmentKey: "seg-lost-reply", AgentID: "agent-1", Size: 500, Chunks: chunks}
	_, err := s.CommitFlush(ctx, f)
	var uerr *metastore.UnknownPartitionsError
	if !errors.As(err, &uerr) || len(uerr.Partitions) != 1 || uerr.Partitions[0] != (metastore.TopicPartition{Topic: gone.ID}) {
		t.Fatalf("retry after the topic was deleted: %v, want *UnknownPartitionsError for %x/0", err, gone.ID[:])
	}
	f.Chunks = f.Chunks[:1]
	res, err := s.CommitFlush(ctx, f)
	if err != nil {
		t.Fatalf("retry without the deleted topic's chunk: %v", err)
	}
	if res.BaseOffsets[0] != first.BaseOffsets[0] {
		t.Fatalf("retry answered base offset %d, the commit assigned %d", res.BaseOffsets[0], first.BaseOffsets[0])
	}
	if got := highWatermarks(t, s, keep.ID); !reflect.DeepEqual(got, []int64{2}) {
		t.Fatalf("high watermark after the retry = %v, want [2] (nothing appended twice)", got)
	}
}

// testCommitFlushGuards: a commit needs its upload record; a forgotten
// (orphan-collected) upload cannot be committed; a retried commit of a
// committed segment returns the same offsets and appends nothing.
func testCommitFlushGuards(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "guards", 1)
	tp := metastore.TopicPartition{Topic: top.ID, Partition: 0}
	flush := func(key string) metastore.Flush {
		return metastore.Flush{SegmentKey: key, AgentID: "agent-1", Size: 500, Chunks: []metastore.Chunk{chunk(top.ID, 0, 5)}}
	}
	if _, err := s.CommitFlush(ctx, flush("never-recorded")); !errors.Is(err, metastore.ErrUploadNotRecorded) {
		t.Fatalf("commit without RecordUpload: %v, want ErrUploadNotRecorded", err)
	}
	if err := s.RecordUpload(ctx, "forgotten", "agent-1"); err != nil {
		t.Fatal(err)
	}
	if forgotten, err := s.ForgetUpload(ctx, "forgotten"); err != nil || !forgotten {
		t.Fatalf("ForgetUpload = %v, %v; want true", forgotten, err)
	}
	if _, err := s.CommitFlush(ctx, flush("forgotten")); !errors.Is(err, metastore.ErrUploadNotRecorded) {
		t.Fatalf("commit of a forgotten upload: %v, want ErrUploadNotRecorded", err)
	}
	first := commit(t, s, "once", chunk(top.ID, 0, 5))
	again, err := s.CommitFlush(ctx, flush("once"))
	if err != nil {
		t.Fatalf("retried commit: %v", err)
	}
	if len(again.BaseOffsets) != 1 || again.BaseOffsets[0] != first.BaseOffsets[0] {
		t.Fatalf("retried commit gave %v, first gave %v", again.BaseOffsets, first.BaseOffsets)
	}
	states, err := s.Partitions(ctx, top.ID)
	if err != nil {
		t.Fatal(err)
	}
	if states[0].HighWatermark != 5 || len(index(t, s, tp, 0)) != 1 {
		t.Fatalf("after a retried commit: hw %d, %d index rows; want 5 and 1", states[0].HighWatermark, len(index(t, s, tp, 0)))
	}
	if orphans, _ := s.Orphans(ctx, time.Now().Add(time.Hour)); len(orphans) != 0 {
		t.Fatalf("orphans after the guards test: %v", orphans)
	}
}

func testIndexBySegment(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "byseg", 3)
	commit(t, s, "seg-1", chunk(top.ID, 0, 5), chunk(top.ID, 2, 7))
	res := commit(t, s, "seg-2", chunk(top.ID, 2, 1))
	es, err := s.IndexBySegment(ctx, "seg-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Partition != 0 || es[1].Partition != 2 || es[1].LastOffset != 6 || es[0].SegmentKey != "seg-1" {
		t.Fatalf("IndexBySegment(seg-1) = %+v", es)
	}
	es, err = s.IndexBySegment(ctx, "seg-2")
	if err != nil || len(es) != 1 || es[0].BaseOffset != res.BaseOffsets[0] {
		t.Fatalf("IndexBySegment(seg-2) = %+v, %v", es, err)
	}
	if es, err := s.IndexBySegment(ctx, "nope"); err != nil || len(es) != 0 {
		t.Fatalf("IndexBySegment(nope) = %+v, %v", es, err)
	}
}

// testCommitFlushConcurrentWide runs committers whose every flush touches
// all partitions of two topics, each flush listing them in its own order:
// a store that locked partitions in the order it meets them would
// deadlock here (Postgres would abort one commit with an error).
func testCommitFlushConcurrentWide(t *testing.T, s metastore.Store) {
	const (
		committers = 4
		flushes    = 8
		partitions = 150
	)
	ctx := ctxFor(t)
	tops := []metastore.Topic{createTopic(t, s, "wide-a", partitions), createTopic(t, s, "wide-b", partitions)}
	var wg sync.WaitGroup
	errs := make(chan error, committers)
	for w := 0; w < committers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for i := 0; i < flushes; i++ {
				f := metastore.Flush{SegmentKey: fmt.Sprintf("wide-%d-%d", w, i), AgentID: fmt.Sprintf("agent-%d", w)}
				for _, top := range tops {
					for p := 0; p < partitions; p++ {
						c := chunk(top.ID, int32(p), 2)
						f.Chunks = append(f.Chunks, c)
					}
				}
				rng.Shuffle(len(f.Chunks), func(i, j int) { f.Chunks[i], f.Chunks[j] = f.Chunks[j], f.Chunks[i] })
				for j := range f.Chunks {
					f.Chunks[j].Position = f.Size
					f.Size += f.Chunks[j].Length
				}
				if err := s.RecordUpload(ctx, f.SegmentKey, f.AgentID); err != nil {
					errs <- err
					return
				}
				if _, err := s.CommitFlush(ctx, f); err != nil {
					errs <- fmt.Errorf("CommitFlush(%s): %w", f.SegmentKey, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, top := range tops {
		for p, hw := range highWatermarks(t, s, top.ID) {
			if want := int64(committers * flushes * 2); hw != want {
				t.Fatalf("%s/%d: high watermark %d, want %d", top.Name, p, hw, want)
			}
		}
	}
}
