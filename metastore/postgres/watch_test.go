package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/testenv"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/postgres"
)

// TestWatchCommitsSeesOtherStoresCommits: a commit through one store (one
// agent) is reported to a watcher on another store (another agent).
func TestWatchCommitsSeesOtherStoresCommits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := testenv.Postgres(t).NewDatabase(t)
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	writer, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	watcher, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()

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
