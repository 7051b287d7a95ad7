package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/testenv"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/postgres"
)

// twoAgents opens two stores on one new, migrated database: one agent
// writing, another watching. Both close when the test ends.
func twoAgents(ctx context.Context, t *testing.T) (writer, watcher *postgres.Store) {
	t.Helper()
	url := testenv.Postgres(t).NewDatabase(t)
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	open := func() *postgres.Store {
		s, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return open(), open()
}

// TestWatchCommitsSeesOtherStoresCommits: a commit through one store (one
// agent) is reported to a watcher on another store (another agent).
func TestWatchCommitsSeesOtherStoresCommits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	writer, watcher := twoAgents(ctx, t)

	type commit struct{ agent, key string }
	got := make(chan commit, 4)
	ready := make(chan struct{})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- watcher.WatchCommits(wctx, metastore.CommitHandler{
			Ready:  func(int64) error { close(ready); return nil },
			Commit: func(a, k string) { got <- commit{a, k} },
		})
	}()
	<-ready

	top, err := writer.CreateTopic(ctx, metastore.TopicSpec{Name: "w", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.RecordUpload(ctx, "seg-w", "agent-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.CommitFlush(ctx, metastore.Flush{SegmentKey: "seg-w", AgentID: "agent-a", Size: 10, Chunks: []metastore.Chunk{{
		TopicPartition: metastore.TopicPartition{Topic: top.ID}, Length: 10, OffsetCount: 1, BatchCount: 1,
	}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c.agent != "agent-a" || c.key != "seg-w" {
			t.Fatalf("notified %+v", c)
		}
	case <-ctx.Done():
		t.Fatal("no notification of the commit")
	}
	stop()
	if err := <-done; err == nil {
		t.Fatal("WatchCommits returned nil after its context ended")
	}
}

// Issue 11, item 5: a topic deletion is reported to watchers, and the name
// cannot be re-created until every live agent has acknowledged it.
func TestTopicDeletionWaitsForEveryAgent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := testenv.Postgres(t).NewDatabase(t)
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "b", Addr: "127.0.0.1:1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	type deletion struct {
		id  metastore.TopicID
		seq int64
	}
	got := make(chan deletion, 4)
	ready := make(chan struct{})
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go s.WatchCommits(wctx, metastore.CommitHandler{
		Ready:        func(int64) error { close(ready); return nil },
		TopicDeleted: func(id metastore.TopicID, seq int64) error { got <- deletion{id, seq}; return nil },
	})
	<-ready
	old, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	var d deletion
	select {
	case d = <-got:
	case <-ctx.Done():
		t.Fatal("no notification of the deletion")
	}
	if d.id != old.ID {
		t.Fatalf("deletion of %x reported, want %x", d.id, old.ID)
	}
	// Agent b has not acknowledged: the name stays taken (CreateTopic waits
	// deletionAckWait for acknowledgements, then gives up), and the
	// deletion is not seen by every agent.
	if seen, err := s.TopicDeletionSeen(ctx, "t"); err != nil || seen {
		t.Fatalf("TopicDeletionSeen before b acknowledged: %v %v", seen, err)
	}
	if seen, err := s.TopicDeletionSeen(ctx, "never-deleted"); err != nil || !seen {
		t.Fatalf("TopicDeletionSeen of a name never deleted: %v %v", seen, err)
	}
	_, err = s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if !errors.Is(err, metastore.ErrTopicDeletionPending) || !errors.Is(err, metastore.ErrTopicExists) {
		t.Fatalf("CreateTopic before every agent acknowledged: %v, want ErrTopicDeletionPending", err)
	}
	if _, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "other", Partitions: 1}); err != nil {
		t.Fatalf("CreateTopic of another name: %v", err)
	}
	if err := s.AckTopicDeletions(ctx, "b", d.seq); err != nil {
		t.Fatal(err)
	}
	if seen, err := s.TopicDeletionSeen(ctx, "t"); err != nil || !seen {
		t.Fatalf("TopicDeletionSeen after b acknowledged: %v %v", seen, err)
	}
	again, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil || again.ID == old.ID {
		t.Fatalf("CreateTopic after every agent acknowledged: %v (id %x, old %x)", err, again.ID, old.ID)
	}
	// An agent whose lease lapsed does not hold a deletion up.
	if err := s.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeregisterAgent(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1}); err != nil {
		t.Fatalf("CreateTopic with no live agent left to acknowledge: %v", err)
	}
}

// TestWatchReportsLogStartMoves: DeleteRecords and retention through one
// store (one agent) are reported to a watcher on another, with the new log
// start offset, so its cached rows below it are dropped.
func TestWatchReportsLogStartMoves(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	writer, watcher := twoAgents(ctx, t)

	type moved struct {
		tp metastore.TopicPartition
		ls int64
	}
	got := make(chan moved, 4)
	ready := make(chan struct{})
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go watcher.WatchCommits(wctx, metastore.CommitHandler{
		Ready:         func(int64) error { close(ready); return nil },
		LogStartMoved: func(tp metastore.TopicPartition, ls int64) { got <- moved{tp, ls} },
	})
	<-ready

	top, err := writer.CreateTopic(ctx, metastore.TopicSpec{Name: "w", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	tp := metastore.TopicPartition{Topic: top.ID, Partition: 1}
	for i, key := range []string{"seg-1", "seg-2"} {
		if err := writer.RecordUpload(ctx, key, "agent-a"); err != nil {
			t.Fatal(err)
		}
		if _, err := writer.CommitFlush(ctx, metastore.Flush{SegmentKey: key, AgentID: "agent-a", Size: 10, Chunks: []metastore.Chunk{{
			TopicPartition: tp, Length: 10, OffsetCount: 3, BatchCount: 1, MaxTimestamp: int64(1000 * (i + 1)),
		}}}); err != nil {
			t.Fatal(err)
		}
	}
	want := func(ls int64) {
		t.Helper()
		select {
		case m := <-got:
			if m.tp != tp || m.ls != ls {
				t.Fatalf("notified %+v, want %v at %d", m, tp, ls)
			}
		case <-ctx.Done():
			t.Fatalf("no notification of the log start moving to %d", ls)
		}
	}
	if _, err := writer.AdvanceLogStart(ctx, tp, 2); err != nil {
		t.Fatal(err)
	}
	want(2)
	if _, err := writer.ApplyRetention(ctx, tp, metastore.RetentionPolicy{ExpireBefore: 1500, MaxBytes: -1}); err != nil {
		t.Fatal(err)
	}
	want(3)
}

// TestWatchReportsOffsetCommits: offsets committed through one store (one
// agent), fenced or not, are reported to a watcher on another with their
// partition of __consumer_offsets, so long polls there wake.
func TestWatchReportsOffsetCommits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	writer, watcher := twoAgents(ctx, t)

	got := make(chan int32, 4)
	ready := make(chan struct{})
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = watcher.WatchCommits(wctx, metastore.CommitHandler{
			Ready:            func(int64) error { close(ready); return nil },
			OffsetsCommitted: func(part int32) { got <- part },
		})
	}()
	<-ready
	next := func(what string) int32 {
		t.Helper()
		select {
		case p := <-got:
			return p
		case <-ctx.Done():
			t.Fatalf("no notification of %s", what)
			return -1
		}
	}
	if err := writer.CommitOffsets(ctx, "my-group", []metastore.CommittedOffset{{Topic: "t", Offset: 1}}); err != nil {
		t.Fatal(err)
	}
	if p := next("an offset commit"); p != 12 {
		t.Fatalf("notified partition %d, want 12 (my-group's)", p)
	}
	if err := writer.CommitGroupOffsets(ctx, "hello", 0, -1, "", []metastore.CommittedOffset{{Topic: "t", Offset: 1}}); err != nil {
		t.Fatal(err)
	}
	if p := next("a fenced offset commit"); p != 22 {
		t.Fatalf("notified partition %d, want 22 (hello's)", p)
	}
}

// TestWatchReportsIndexReplacements: a swap that removed records (keyed
// compaction) through one store is reported to a watcher on another, so
// it drops the partition's cached rows; a swap that keeps every record
// (compaction into per-partition segments) is not.
func TestWatchReportsIndexReplacements(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	writer, watcher := twoAgents(ctx, t)

	got := make(chan metastore.TopicPartition, 4)
	ready := make(chan struct{})
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go watcher.WatchCommits(wctx, metastore.CommitHandler{
		Ready:         func(int64) error { close(ready); return nil },
		IndexReplaced: func(tp metastore.TopicPartition) { got <- tp },
	})
	<-ready

	top, err := writer.CreateTopic(ctx, metastore.TopicSpec{Name: "r", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		tp := metastore.TopicPartition{Topic: top.ID, Partition: p}
		key := fmt.Sprintf("seg-%d", p)
		if err := writer.RecordUpload(ctx, key, "agent-a"); err != nil {
			t.Fatal(err)
		}
		if _, err := writer.CommitFlush(ctx, metastore.Flush{SegmentKey: key, AgentID: "agent-a", Size: 10, Chunks: []metastore.Chunk{{
			TopicPartition: tp, Length: 10, OffsetCount: 3, BatchCount: 1,
		}}}); err != nil {
			t.Fatal(err)
		}
		old, err := writer.Index(ctx, tp, 0, 1<<40, 10)
		if err != nil {
			t.Fatal(err)
		}
		newKey := fmt.Sprintf("new-%d", p)
		if err := writer.RecordUpload(ctx, newKey, "agent-a"); err != nil {
			t.Fatal(err)
		}
		// Partition 0 is compacted (every record kept), partition 1 cleaned.
		if ok, err := writer.ReplaceIndex(ctx, metastore.Replacement{TopicPartition: tp, Old: old, SegmentKey: newKey, AgentID: "agent-a",
			Size: 8, Position: 0, Length: 8, BatchCount: 1, Removes: p == 1}); err != nil || !ok {
			t.Fatalf("ReplaceIndex = %v, %v", ok, err)
		}
	}
	select {
	case tp := <-got:
		// Notifications come in commit order: partition 0's swap, first,
		// would have come first.
		if tp.Topic != top.ID || tp.Partition != 1 {
			t.Fatalf("notified %+v; want only partition 1's swap", tp)
		}
	case <-ctx.Done():
		t.Fatal("no notification of the swap that removed records")
	}
}
