package postgres_test

import (
	"context"
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
		done <- watcher.WatchCommits(wctx, func() { close(ready) }, func(a, k string) { got <- commit{a, k} })
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
