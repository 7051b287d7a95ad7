package metastoretest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/siltstream/silt/metastore"
)

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
	if err := s.SetTopicConfig(ctx, "t", map[string]string{"a": "1", "b": "2"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTopicConfig(ctx, "t", map[string]string{"c": "3", "cleanup.policy": "compact,delete"}, map[string]string{"b": "2", "a": "1"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Topic(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"c": "3", "cleanup.policy": "compact,delete"}; !reflect.DeepEqual(got.Config, want) {
		t.Fatalf("config after replace = %v, want %v", got.Config, want)
	}
	// A writer that read {a:1 b:2} before the change above lost the race:
	// its write is refused and changes nothing.
	if err := s.SetTopicConfig(ctx, "t", map[string]string{"a": "1", "b": "2", "d": "4"}, map[string]string{"a": "1", "b": "2"}); !errors.Is(err, metastore.ErrConfigChanged) {
		t.Fatalf("SetTopicConfig from a stale config: error = %v, want ErrConfigChanged", err)
	}
	if got, _ := s.Topic(ctx, "t"); !reflect.DeepEqual(got.Config, map[string]string{"c": "3", "cleanup.policy": "compact,delete"}) {
		t.Fatalf("config after a refused write = %v", got.Config)
	}
	if err := s.SetTopicConfig(ctx, "t", nil, got.Config); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Topic(ctx, "t"); len(got.Config) != 0 {
		t.Fatalf("config after clearing = %v, want empty", got.Config)
	}
	if err := s.SetTopicConfig(ctx, "nope", map[string]string{"a": "1"}, nil); !errors.Is(err, metastore.ErrUnknownTopic) {
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

// testDeleteTopicForgetsItsState (issue 11, item 5): a deleted topic takes
// everything keyed by it along — consumer groups' committed offsets (keyed
// by name, so a re-created topic of that name would inherit them), its
// ongoing and aborted transactions and its producers' sequence state — and
// leaves other topics' alone.
func testDeleteTopicForgetsItsState(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	old := createTopic(t, s, "t", 1)
	keep := createTopic(t, s, "keep", 1)
	tp, keepTP := metastore.TopicPartition{Topic: old.ID}, metastore.TopicPartition{Topic: keep.ID}
	// Producer 7 aborts a transaction on t, producer 8 leaves one open on
	// t, producer 9 is idempotent on t; keep gets an open transaction too.
	commitBatches(t, s, "seg-1", batchChunk(tp, txnBatch(2, 7, 0, 0), txnBatch(1, 8, 0, 0), pbatch(0, 1, 9, 0, 0)),
		batchChunk(keepTP, txnBatch(1, 8, 0, 1)))
	setTxn(t, s, "p7", 7, 0, metastore.TxnPrepareAbort)
	commitBatches(t, s, "seg-2", batchChunk(tp, marker(7, 0, true)))
	if ab, err := s.AbortedTxns(ctx, tp, 0, 100); err != nil || len(ab) != 1 {
		t.Fatalf("before delete: AbortedTxns = %+v, %v", ab, err)
	}
	for _, g := range []string{"g1", "g2"} {
		if err := s.CommitOffsets(ctx, g, []metastore.CommittedOffset{
			{Topic: "t", Partition: 0, Offset: 500, LeaderEpoch: -1},
			{Topic: "keep", Partition: 0, Offset: 1, LeaderEpoch: -1},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"g1", "g2"} {
		got, err := s.FetchOffsets(ctx, g)
		want := []metastore.CommittedOffset{{Topic: "keep", Partition: 0, Offset: 1, LeaderEpoch: -1}}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("group %s offsets after deleting t = %+v, %v; want only keep's %+v", g, got, err, want)
		}
	}
	if ab, err := s.AbortedTxns(ctx, tp, 0, 100); err != nil || len(ab) != 0 {
		t.Fatalf("aborted transactions of a deleted topic remain: %+v, %v", ab, err)
	}
	if on, err := s.OngoingTxns(ctx, tp); err != nil || len(on) != 0 {
		t.Fatalf("ongoing transactions of a deleted topic remain: %+v, %v", on, err)
	}
	if on, err := s.OngoingTxns(ctx, keepTP); err != nil || len(on) != 1 {
		t.Fatalf("ongoing transactions of another topic = %+v, %v; want its one", on, err)
	}
	// Only keep's producer state is left: producer 8 on keep.
	if n, err := s.ExpireProducers(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("producer state rows left after delete = %d, %v; want keep's 1", n, err)
	}
	// The re-created topic starts from nothing.
	again := createTopic(t, s, "t", 1)
	if ps := partitionStates(t, s, again.ID); ps[0].HighWatermark != 0 || ps[0].LastStableOffset != 0 {
		t.Fatalf("re-created topic: %+v", ps[0])
	}
}
