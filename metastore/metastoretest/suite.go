package metastoretest

import (
	"context"
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

// Run runs the conformance suite, calling newStore for a fresh empty store in
// every subtest. newStore should register the store's Close with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) metastore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s metastore.Store)
	}{
		{"Topics", testTopics},
		{"TopicConfig", testTopicConfig},
		{"CreatePartitions", testCreatePartitions},
		{"DeleteTopic", testDeleteTopic},
		{"CommitFlush", testCommitFlush},
		{"CommitFlushConcurrent", testCommitFlushConcurrent},
		{"CommitFlushUnknownPartitions", testCommitFlushUnknownPartitions},
		{"RetriedCommitAfterDelete", testRetriedCommitAfterDelete},
		{"CommitFlushGuards", testCommitFlushGuards},
		{"RecordUploads", testRecordUploads},
		{"IdempotentProducers", testIdempotentProducers},
		{"IdempotentConcurrent", testIdempotentConcurrent},
		{"Index", testIndex},
		{"IndexTimestamps", testIndexTimestamps},
		{"Orphans", testOrphans},
		{"OrphanCommittedAfterListing", testOrphanCommittedAfterListing},
		{"ProducerIDs", testProducerIDs},
		{"ConsumerOffsets", testConsumerOffsets},
		{"Leases", testLeases},
		{"Agents", testAgents},
		{"MembershipEpoch", testMembershipEpoch},
		{"IndexBySegment", testIndexBySegment},
		{"Groups", testGroups},
		{"TxnState", testTxnState},
		{"TxnStateABA", testTxnStateABA},
		{"TxnBookkeeping", testTxnBookkeeping},
		{"TxnMarkerFencesZombie", testTxnMarkerFencesZombie},
		{"TxnStaleMarker", testTxnStaleMarker},
		{"TxnExpiry", testTxnExpiry},
		{"SchemaVersion", testSchemaVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func createTopic(t *testing.T, s metastore.Store, name string, partitions int32) metastore.Topic {
	t.Helper()
	top, err := s.CreateTopic(ctxFor(t), metastore.TopicSpec{Name: name, Partitions: partitions})
	if err != nil {
		t.Fatalf("CreateTopic(%s): %v", name, err)
	}
	return top
}

func partitionStates(t *testing.T, s metastore.Store, id metastore.TopicID) []metastore.PartitionState {
	t.Helper()
	ps, err := s.Partitions(ctxFor(t), id)
	if err != nil {
		t.Fatalf("Partitions: %v", err)
	}
	return ps
}

func highWatermarks(t *testing.T, s metastore.Store, id metastore.TopicID) []int64 {
	t.Helper()
	var hws []int64
	for _, p := range partitionStates(t, s, id) {
		hws = append(hws, p.HighWatermark)
	}
	return hws
}

// waitFor polls cond until it holds or the deadline passes. It is for
// conditions that depend on a store clock (lease and liveness expiry).
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testTopics(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	b, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "b", Partitions: 3, Config: map[string]string{"retention.ms": "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if b.ID == (metastore.TopicID{}) {
		t.Fatal("CreateTopic with a zero id kept the zero id")
	}
	want := metastore.Topic{ID: b.ID, Name: "b", Partitions: 3, Config: map[string]string{"retention.ms": "1000"}}
	if !reflect.DeepEqual(b, want) {
		t.Fatalf("CreateTopic = %+v, want %+v", b, want)
	}
	id := metastore.TopicID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	a, err := s.CreateTopic(ctx, metastore.TopicSpec{ID: id, Name: "a", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != id {
		t.Fatalf("CreateTopic id = %x, want the given %x", a.ID, id)
	}
	if a.Config == nil || len(a.Config) != 0 {
		t.Fatalf("CreateTopic without config: Config = %#v, want an empty map", a.Config)
	}
	if _, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "b", Partitions: 1}); !errors.Is(err, metastore.ErrTopicExists) {
		t.Fatalf("CreateTopic(existing) error = %v, want ErrTopicExists", err)
	}
	if _, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "zero", Partitions: 0}); !errors.Is(err, metastore.ErrInvalidPartitions) {
		t.Fatalf("CreateTopic(0 partitions) error = %v, want ErrInvalidPartitions", err)
	}

	got, err := s.Topic(ctx, "b")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Topic(b) = %+v, %v; want %+v", got, err, want)
	}
	if _, err := s.Topic(ctx, "nope"); !errors.Is(err, metastore.ErrUnknownTopic) {
		t.Fatalf("Topic(unknown) error = %v, want ErrUnknownTopic", err)
	}
	all, err := s.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Name != "a" || all[1].Name != "b" {
		t.Fatalf("Topics = %+v, want a then b", all)
	}

	ps := partitionStates(t, s, b.ID)
	wantPS := []metastore.PartitionState{{Partition: 0}, {Partition: 1}, {Partition: 2}}
	if !reflect.DeepEqual(ps, wantPS) {
		t.Fatalf("Partitions = %+v, want %+v", ps, wantPS)
	}
	if _, err := s.Partitions(ctx, metastore.TopicID{0xff}); !errors.Is(err, metastore.ErrUnknownTopic) {
		t.Fatalf("Partitions(unknown id) error = %v, want ErrUnknownTopic", err)
	}
}

func testTopicConfig(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	createTopic(t, s, "t", 1)
	if err := s.SetTopicConfig(ctx, "t", map[string]string{"a": "1", "b": "2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTopicConfig(ctx, "t", map[string]string{"c": "3", "cleanup.policy": "compact,delete"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Topic(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"c": "3", "cleanup.policy": "compact,delete"}; !reflect.DeepEqual(got.Config, want) {
		t.Fatalf("config after replace = %v, want %v", got.Config, want)
	}
	if err := s.SetTopicConfig(ctx, "t", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Topic(ctx, "t"); len(got.Config) != 0 {
		t.Fatalf("config after clearing = %v, want empty", got.Config)
	}
	if err := s.SetTopicConfig(ctx, "nope", map[string]string{"a": "1"}); !errors.Is(err, metastore.ErrUnknownTopic) {
		t.Fatalf("SetTopicConfig(unknown) error = %v, want ErrUnknownTopic", err)
	}
}

func testCreatePartitions(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "t", 2)
	commit(t, s, "seg-1", chunk(top.ID, 0, 5), chunk(top.ID, 1, 7))
	if err := s.CreatePartitions(ctx, "t", 5); err != nil {
		t.Fatal(err)
	}
	if got, want := highWatermarks(t, s, top.ID), []int64{5, 7, 0, 0, 0}; !reflect.DeepEqual(got, want) {
		t.Fatalf("high watermarks after growing = %v, want %v", got, want)
	}
	got, err := s.Topic(ctx, "t")
	if err != nil || got.Partitions != 5 {
		t.Fatalf("Topic after growing = %+v, %v; want 5 partitions", got, err)
	}
	for _, n := range []int32{5, 3} {
		if err := s.CreatePartitions(ctx, "t", n); !errors.Is(err, metastore.ErrInvalidPartitions) {
			t.Fatalf("CreatePartitions(%d) on 5 partitions: error = %v, want ErrInvalidPartitions", n, err)
		}
	}
	if err := s.CreatePartitions(ctx, "nope", 3); !errors.Is(err, metastore.ErrUnknownTopic) {
		t.Fatalf("CreatePartitions(unknown) error = %v, want ErrUnknownTopic", err)
	}
	// The new partitions take flushes.
	res := commit(t, s, "seg-2", chunk(top.ID, 4, 3), chunk(top.ID, 0, 1))
	if want := []int64{0, 5}; !reflect.DeepEqual(res.BaseOffsets, want) {
		t.Fatalf("base offsets = %v, want %v", res.BaseOffsets, want)
	}
}

func testDeleteTopic(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	old := createTopic(t, s, "t", 2)
	keep := createTopic(t, s, "keep", 1)
	commit(t, s, "seg-1", chunk(old.ID, 0, 5), chunk(old.ID, 1, 5), chunk(keep.ID, 0, 5))
	if err := s.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Topic(ctx, "t"); !errors.Is(err, metastore.ErrUnknownTopic) {
		t.Fatalf("Topic after delete: error = %v, want ErrUnknownTopic", err)
	}
	if _, err := s.Partitions(ctx, old.ID); !errors.Is(err, metastore.ErrUnknownTopic) {
		t.Fatalf("Partitions after delete: error = %v, want ErrUnknownTopic", err)
	}
	if err := s.DeleteTopic(ctx, "t"); !errors.Is(err, metastore.ErrUnknownTopic) {
		t.Fatalf("DeleteTopic twice: error = %v, want ErrUnknownTopic", err)
	}
	for p := int32(0); p < 2; p++ {
		if es := index(t, s, metastore.TopicPartition{Topic: old.ID, Partition: p}, 0); len(es) != 0 {
			t.Fatalf("index rows of a deleted topic remain: %+v", es)
		}
	}
	if es := index(t, s, metastore.TopicPartition{Topic: keep.ID}, 0); len(es) != 1 {
		t.Fatalf("index of another topic after delete = %+v, want its one row", es)
	}
	// The name is free again, with a new id and fresh partitions.
	again := createTopic(t, s, "t", 1)
	if again.ID == old.ID {
		t.Fatal("recreated topic reused the deleted topic's id")
	}
	if got := highWatermarks(t, s, again.ID); !reflect.DeepEqual(got, []int64{0}) {
		t.Fatalf("recreated topic high watermarks = %v, want [0]", got)
	}
}

func chunk(id metastore.TopicID, p int32, count int64) metastore.Chunk {
	return metastore.Chunk{
		TopicPartition: metastore.TopicPartition{Topic: id, Partition: p},
		Length:         100 * count,
		OffsetCount:    count,
		BatchCount:     1,
		MinTimestamp:   1000,
		MaxTimestamp:   2000,
	}
}

// commit records and commits a flush of chunks, laid out back to back.
func commit(t *testing.T, s metastore.Store, key string, chunks ...metastore.Chunk) metastore.FlushResult {
	t.Helper()
	ctx := ctxFor(t)
	if err := s.RecordUpload(ctx, key, "agent-1"); err != nil {
		t.Fatalf("RecordUpload(%s): %v", key, err)
	}
	var pos int64
	for i := range chunks {
		chunks[i].Position = pos
		pos += chunks[i].Length
	}
	res, err := s.CommitFlush(ctx, metastore.Flush{SegmentKey: key, AgentID: "agent-1", Size: pos, Chunks: chunks})
	if err != nil {
		t.Fatalf("CommitFlush(%s): %v", key, err)
	}
	if len(res.BaseOffsets) != len(chunks) {
		t.Fatalf("CommitFlush(%s) returned %d base offsets for %d chunks", key, len(res.BaseOffsets), len(chunks))
	}
	return res
}

func index(t *testing.T, s metastore.Store, tp metastore.TopicPartition, from int64) []metastore.IndexEntry {
	t.Helper()
	es, err := s.Index(ctxFor(t), tp, from, 1<<62, 1<<30)
	if err != nil {
		t.Fatalf("Index: %v", err)
	}
	return es
}

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

	// An empty flush commits the segment and assigns nothing.
	ctx := ctxFor(t)
	if err := s.RecordUpload(ctx, "seg-empty", "agent-1"); err != nil {
		t.Fatal(err)
	}
	res, err := s.CommitFlush(ctx, metastore.Flush{SegmentKey: "seg-empty", AgentID: "agent-1"})
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

func testIndex(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "t", 2)
	tp := metastore.TopicPartition{Topic: top.ID}
	// Chunks [0,9] [10,19] ... [90,99], 1000 bytes each; partition 1 gets
	// interleaved rows that must never show up.
	for i := 0; i < 10; i++ {
		c := chunk(top.ID, 0, 10)
		c.Length = 1000
		commit(t, s, fmt.Sprintf("seg-%d", i), c, chunk(top.ID, 1, 1))
	}
	bases := func(es []metastore.IndexEntry) []int64 {
		out := []int64{}
		for _, e := range es {
			if e.TopicPartition != tp {
				t.Fatalf("Index returned a row of another partition: %+v", e)
			}
			out = append(out, e.BaseOffset)
		}
		return out
	}
	cases := []struct {
		offset, maxBytes int64
		limit            int
		want             []int64
	}{
		{0, 1 << 40, 100, []int64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}},
		{0, 1 << 40, 3, []int64{0, 10, 20}},
		{15, 1 << 40, 2, []int64{10, 20}},  // starts at the chunk holding the offset
		{19, 1 << 40, 1, []int64{10}},      // last offset of a chunk
		{20, 1 << 40, 1, []int64{20}},      // first offset of a chunk
		{0, 1, 100, []int64{0}},            // at least one row, however small the budget
		{0, 0, 100, []int64{0}},            // even a zero budget
		{5, 1000, 100, []int64{0}},         // exactly one chunk's bytes
		{5, 1001, 100, []int64{0, 10}},     // stops once the budget is reached
		{5, 2500, 100, []int64{0, 10, 20}}, //
		{95, 1 << 40, 100, []int64{90}},    //
		{100, 1 << 40, 100, []int64{}},     // at the high watermark
		{1000, 1 << 40, 100, []int64{}},    // beyond it
		{-1, 1500, 100, []int64{0, 10}},    // before the log start
	}
	for _, c := range cases {
		es, err := s.Index(ctx, tp, c.offset, c.maxBytes, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := bases(es); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Index(offset=%d, maxBytes=%d, limit=%d) bases = %v, want %v", c.offset, c.maxBytes, c.limit, got, c.want)
		}
	}
	if es, err := s.Index(ctx, metastore.TopicPartition{Topic: top.ID, Partition: 9}, 0, 1<<20, 10); err != nil || len(es) != 0 {
		t.Fatalf("Index of a missing partition = %+v, %v; want nothing", es, err)
	}
}

func testIndexTimestamps(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "t", 2)
	tp := metastore.TopicPartition{Topic: top.ID}
	if _, ok, err := s.IndexByTimestamp(ctx, tp, 0); err != nil || ok {
		t.Fatalf("IndexByTimestamp on an empty partition: ok=%v err=%v", ok, err)
	}
	if _, ok, err := s.IndexMaxTimestamp(ctx, tp); err != nil || ok {
		t.Fatalf("IndexMaxTimestamp on an empty partition: ok=%v err=%v", ok, err)
	}
	// Timestamps are not monotonic across chunks (producers set them).
	spans := [][2]int64{{100, 200}, {150, 500}, {300, 400}, {600, 700}, {50, 700}, {650, 690}}
	for i, sp := range spans {
		c := chunk(top.ID, 0, 2)
		c.MinTimestamp, c.MaxTimestamp = sp[0], sp[1]
		other := chunk(top.ID, 1, 1)
		other.MinTimestamp, other.MaxTimestamp = 5000, 9000
		commit(t, s, fmt.Sprintf("seg-%d", i), c, other)
	}
	cases := []struct {
		ts   int64
		base int64
		ok   bool
	}{
		{0, 0, true},
		{200, 0, true},
		{201, 2, true},
		{450, 2, true},
		{501, 6, true},
		{700, 6, true},
		{701, 0, false},
	}
	for _, c := range cases {
		e, ok, err := s.IndexByTimestamp(ctx, tp, c.ts)
		if err != nil {
			t.Fatal(err)
		}
		if ok != c.ok || (ok && e.BaseOffset != c.base) {
			t.Errorf("IndexByTimestamp(%d) = base %d ok=%v, want base %d ok=%v", c.ts, e.BaseOffset, ok, c.base, c.ok)
		}
		if ok && (e.TopicPartition != tp || e.MaxTimestamp < c.ts) {
			t.Errorf("IndexByTimestamp(%d) returned %+v", c.ts, e)
		}
	}
	e, ok, err := s.IndexMaxTimestamp(ctx, tp)
	if err != nil || !ok {
		t.Fatalf("IndexMaxTimestamp: ok=%v err=%v", ok, err)
	}
	if e.BaseOffset != 6 || e.MaxTimestamp != 700 || e.LastOffset != 7 || e.SegmentKey != "seg-3" {
		t.Fatalf("IndexMaxTimestamp = %+v, want the earliest row with ts 700 (base 6, seg-3)", e)
	}
}

func testOrphans(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "t", 1)
	before := time.Now().Add(-time.Minute)
	for _, k := range []string{"seg-a", "seg-b"} {
		if err := s.RecordUpload(ctx, k, "agent-"+k); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, s, "seg-c", chunk(top.ID, 0, 1))
	// RecordUpload is idempotent for an upload that is retried.
	if err := s.RecordUpload(ctx, "seg-a", "agent-seg-a"); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)

	got, err := s.Orphans(ctx, before)
	if err != nil || len(got) != 0 {
		t.Fatalf("Orphans(before the uploads) = %+v, %v; want none", got, err)
	}
	got, err = s.Orphans(ctx, later)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Key < got[j].Key })
	if len(got) != 2 || got[0].Key != "seg-a" || got[1].Key != "seg-b" || got[0].AgentID != "agent-seg-a" {
		t.Fatalf("Orphans = %+v, want seg-a and seg-b (not the committed seg-c)", got)
	}
	for _, u := range got {
		if u.RecordedAt.Before(before) || u.RecordedAt.After(later) {
			t.Fatalf("orphan %s recorded at %v, want between %v and %v", u.Key, u.RecordedAt, before, later)
		}
	}
	if forgotten, err := s.ForgetUpload(ctx, "seg-a"); err != nil || !forgotten {
		t.Fatalf("ForgetUpload(seg-a) = %v, %v; want true", forgotten, err)
	}
	if forgotten, err := s.ForgetUpload(ctx, "seg-a"); err != nil || forgotten {
		t.Fatalf("second ForgetUpload(seg-a) = %v, %v; want false", forgotten, err)
	}
	// Forgetting a committed segment does nothing.
	if forgotten, err := s.ForgetUpload(ctx, "seg-c"); err != nil || forgotten {
		t.Fatalf("ForgetUpload(committed seg-c) = %v, %v; want false", forgotten, err)
	}
	got, err = s.Orphans(ctx, later)
	if err != nil || len(got) != 1 || got[0].Key != "seg-b" {
		t.Fatalf("Orphans after ForgetUpload = %+v, %v; want seg-b", got, err)
	}
	// A committed segment is never recorded as an orphan again.
	if err := s.RecordUpload(ctx, "seg-c", "agent-1"); err != nil {
		t.Fatal(err)
	}
	got, err = s.Orphans(ctx, later)
	if err != nil || len(got) != 1 {
		t.Fatalf("Orphans after re-recording a committed segment = %+v, %v; want only seg-b", got, err)
	}
}

// testOrphanCommittedAfterListing: a flush whose commit kept retrying past
// the orphan age is listed as an orphan, then commits (its producers are
// acknowledged). The janitor's forget must then lose, and say so, so that
// it leaves the object alone; the commit and its index rows stay.
func testOrphanCommittedAfterListing(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "slow", 1)
	tp := metastore.TopicPartition{Topic: top.ID, Partition: 0}
	if err := s.RecordUpload(ctx, "seg-slow", "agent-1"); err != nil {
		t.Fatal(err)
	}
	orphans, err := s.Orphans(ctx, time.Now().Add(time.Minute))
	if err != nil || len(orphans) != 1 || orphans[0].Key != "seg-slow" {
		t.Fatalf("Orphans = %+v, %v; want seg-slow", orphans, err)
	}
	first := commit(t, s, "seg-slow", chunk(top.ID, 0, 3))
	forgotten, err := s.ForgetUpload(ctx, "seg-slow")
	if err != nil {
		t.Fatal(err)
	}
	if forgotten {
		t.Fatal("ForgetUpload of a committed upload reported true: the janitor would delete acknowledged data")
	}
	rows := index(t, s, tp, 0)
	if len(rows) != 1 || rows[0].SegmentKey != "seg-slow" || rows[0].BaseOffset != first.BaseOffsets[0] || rows[0].LastOffset != 2 {
		t.Fatalf("index after the forget = %+v; want seg-slow's row [0, 2]", rows)
	}
	if hw := highWatermarks(t, s, top.ID); hw[0] != 3 {
		t.Fatalf("high watermark %d after the forget, want 3", hw[0])
	}
	// Still committed: a retried commit returns the first offsets and
	// appends nothing, and it is no orphan.
	again, err := s.CommitFlush(ctx, metastore.Flush{SegmentKey: "seg-slow", AgentID: "agent-1", Size: 100, Chunks: []metastore.Chunk{chunk(top.ID, 0, 3)}})
	if err != nil || again.BaseOffsets[0] != first.BaseOffsets[0] {
		t.Fatalf("retried commit after the forget = %+v, %v; want base %d", again, err, first.BaseOffsets[0])
	}
	if orphans, err := s.Orphans(ctx, time.Now().Add(time.Minute)); err != nil || len(orphans) != 0 {
		t.Fatalf("Orphans after the commit = %+v, %v; want none", orphans, err)
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

func testConsumerOffsets(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	got, err := s.FetchOffsets(ctx, "g")
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("FetchOffsets of an unknown group = %#v, %v; want an empty slice", got, err)
	}
	if err := s.CommitOffsets(ctx, "g", []metastore.CommittedOffset{
		{Topic: "b", Partition: 1, Offset: 10, LeaderEpoch: 1, Metadata: "m1"},
		{Topic: "a", Partition: 2, Offset: 20, LeaderEpoch: -1},
		{Topic: "b", Partition: 0, Offset: 5, LeaderEpoch: 1, Metadata: "m0"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOffsets(ctx, "other", []metastore.CommittedOffset{{Topic: "a", Partition: 2, Offset: 99}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOffsets(ctx, "g", []metastore.CommittedOffset{
		{Topic: "b", Partition: 1, Offset: 11, LeaderEpoch: 2, Metadata: "new"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOffsets(ctx, "g", nil); err != nil {
		t.Fatal(err)
	}
	got, err = s.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	want := []metastore.CommittedOffset{
		{Topic: "a", Partition: 2, Offset: 20, LeaderEpoch: -1},
		{Topic: "b", Partition: 0, Offset: 5, LeaderEpoch: 1, Metadata: "m0"},
		{Topic: "b", Partition: 1, Offset: 11, LeaderEpoch: 2, Metadata: "new"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FetchOffsets = %+v, want %+v", got, want)
	}
}

func testLeases(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	acquire := func(name, holder string, ttl time.Duration) bool {
		t.Helper()
		ok, err := s.AcquireLease(ctx, name, holder, ttl)
		if err != nil {
			t.Fatalf("AcquireLease(%s, %s): %v", name, holder, err)
		}
		return ok
	}
	if !acquire("gc", "a", time.Minute) {
		t.Fatal("a could not take a free lease")
	}
	if acquire("gc", "b", time.Minute) {
		t.Fatal("b took a lease a holds")
	}
	if !acquire("gc", "a", time.Minute) {
		t.Fatal("a could not renew its lease")
	}
	if !acquire("retention", "b", time.Minute) {
		t.Fatal("b could not take a different free lease")
	}
	// Releasing a lease one does not hold does nothing.
	if err := s.ReleaseLease(ctx, "gc", "b"); err != nil {
		t.Fatal(err)
	}
	if acquire("gc", "b", time.Minute) {
		t.Fatal("b took a's lease after releasing it without holding it")
	}
	if err := s.ReleaseLease(ctx, "gc", "a"); err != nil {
		t.Fatal(err)
	}
	if !acquire("gc", "b", time.Minute) {
		t.Fatal("b could not take a released lease")
	}

	// Expiry: a short lease lapses by the store's clock; a renewal with a
	// long ttl does not.
	if !acquire("short", "a", 200*time.Millisecond) {
		t.Fatal("a could not take a free lease")
	}
	if acquire("short", "b", time.Minute) {
		t.Fatal("b took a lease before it expired")
	}
	waitFor(t, "an expired lease to pass to b", 10*time.Second, func() bool { return acquire("short", "b", time.Minute) })
	time.Sleep(250 * time.Millisecond)
	if acquire("short", "a", time.Minute) {
		t.Fatal("a took b's lease back while b held it with a long ttl")
	}
}

func testAgents(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	got, err := s.Agents(ctx)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Agents of an empty store = %#v, %v; want an empty slice", got, err)
	}
	start := time.Now()
	for _, a := range []metastore.Agent{
		{ID: "b", Addr: "10.0.0.2:9092", Zone: "z2"},
		{ID: "a", Addr: "10.0.0.1:9092", Zone: "z1"},
	} {
		if err := s.RegisterAgent(ctx, a, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "short", Addr: "x:1"}, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// A heartbeat updates the address.
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "a", Addr: "10.0.0.9:9092", Zone: "z1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err = s.Agents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != "a" || got[1].ID != "b" || got[2].ID != "short" {
		t.Fatalf("Agents = %+v, want a, b, short", got)
	}
	if got[0].Addr != "10.0.0.9:9092" || got[0].Zone != "z1" {
		t.Fatalf("agent a after heartbeat = %+v", got[0])
	}
	if exp := got[0].Expires; exp.Before(start.Add(50*time.Second)) || exp.After(time.Now().Add(70*time.Second)) {
		t.Fatalf("agent a expires at %v, want about a minute from %v", exp, start)
	}
	waitFor(t, "agent short to lapse", 10*time.Second, func() bool {
		got, err := s.Agents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(got) == 2
	})
	if err := s.DeregisterAgent(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	got, err = s.Agents(ctx)
	if err != nil || len(got) != 1 || got[0].ID != "a" {
		t.Fatalf("Agents after deregistering b = %+v, %v; want a", got, err)
	}
	// A lapsed agent that heartbeats again is back.
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "short", Addr: "x:1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Agents(ctx); len(got) != 2 {
		t.Fatalf("Agents after re-registering = %+v, want a and short", got)
	}
}

func testSchemaVersion(t *testing.T, s metastore.Store) {
	v, err := s.SchemaVersion(ctxFor(t))
	if err != nil || v <= 0 {
		t.Fatalf("SchemaVersion = %d, %v; want > 0", v, err)
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

// testMembershipEpoch: the epoch moves forward exactly when the set of live
// agents changes, never on a heartbeat.
func testMembershipEpoch(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	epoch := func() int64 {
		t.Helper()
		m, err := s.Membership(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return m.Epoch
	}
	e0 := epoch()
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "a", Addr: "a:1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	e1 := epoch()
	if e1 <= e0 {
		t.Fatalf("epoch after a join = %d, want > %d", e1, e0)
	}
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "a", Addr: "a:1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if e := epoch(); e != e1 {
		t.Fatalf("epoch moved on a heartbeat: %d -> %d", e1, e)
	}
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "brief", Addr: "b:1"}, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	e2 := epoch()
	var m metastore.Membership
	waitFor(t, "agent brief to lapse", 10*time.Second, func() bool {
		var err error
		m, err = s.Membership(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(m.Agents) == 1
	})
	if m.Epoch <= e2 || m.Agents[0].ID != "a" {
		t.Fatalf("after a lapse: %+v, want only a and epoch > %d", m, e2)
	}
	if err := s.DeregisterAgent(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if e := epoch(); e <= m.Epoch {
		t.Fatalf("epoch after a leave = %d, want > %d", e, m.Epoch)
	}
	e3 := epoch()
	if err := s.DeregisterAgent(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if e := epoch(); e != e3 {
		t.Fatalf("deregistering an absent agent moved the epoch: %d -> %d", e3, e)
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

// testRecordUploads: keys reserved together are each recorded (orphans
// until committed) and each committable.
func testRecordUploads(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "reserved", 1)
	if err := s.RecordUploads(ctx, []string{"r-1", "r-2", "r-3"}, "agent-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitFlush(ctx, metastore.Flush{SegmentKey: "r-2", AgentID: "agent-1", Size: 100,
		Chunks: []metastore.Chunk{chunk(top.ID, 0, 1)}}); err != nil {
		t.Fatalf("commit of a reserved key: %v", err)
	}
	orphans, err := s.Orphans(ctx, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range orphans {
		keys = append(keys, o.Key)
	}
	if len(keys) != 2 || keys[0] != "r-1" || keys[1] != "r-3" {
		t.Fatalf("orphans = %v, want [r-1 r-3]", keys)
	}
}
