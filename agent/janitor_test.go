package agent_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/siltstream/silt/jobs"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
)

// TestJanitorDeletesOnlyOrphans: an upload that was recorded and written
// but never committed (a crash between upload and commit) is deleted;
// committed segments are untouched; and the forgotten upload can no longer
// be committed, so no index row can point at the deleted object.
func TestJanitorDeletesOnlyOrphans(t *testing.T) {
	forEachBackend(t, testJanitorDeletesOnlyOrphans)
}

func testJanitorDeletesOnlyOrphans(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t)
	createTopic(t, cl, "keep", 1, nil)
	if code := rawProduce(t, cl, "keep", 0, batch("acknowledged")); code != 0 {
		t.Fatalf("produce: %d", code)
	}
	ctx := context.Background()
	const orphan = "segments/crashed-before-commit.seg"
	if err := ta.store.RecordUpload(ctx, orphan, "dead-agent"); err != nil {
		t.Fatal(err)
	}
	if err := ta.bucket.Put(ctx, orphan, []byte("never committed")); err != nil {
		t.Fatal(err)
	}

	j := &jobs.GC{Store: ta.store, Bucket: ta.bucket, Log: slog.Default(), OrphanMinAge: 0, Grace: 0}
	// With OrphanMinAge 0 the agent's own unused key reservations
	// (recorded uploads without objects) are collected too; in service
	// orphan.min.age is far longer than a reservation may wait (keyMaxAge).
	c, err := j.CollectOnce(ctx)
	if err != nil || c.Deleted < 1 {
		t.Fatalf("collect: %+v, err %v; want the orphan deleted", c, err)
	}
	if _, err := ta.bucket.Head(ctx, orphan); !objectstore.IsNotFound(err) {
		t.Fatalf("orphan still in the bucket: %v", err)
	}
	var segments int
	ta.bucket.List(ctx, "segments/", func(objectstore.Attrs) error { segments++; return nil })
	if segments == 0 {
		t.Fatal("the committed segment was deleted too")
	}
	if p := rawFetch(t, cl, "keep", 0, 0, 1, 1<<20); len(p.RecordBatches) == 0 {
		t.Fatal("acknowledged data unreadable after collection")
	}

	topic, err := ta.store.Topic(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ta.store.CommitFlush(ctx, metastore.Flush{SegmentKey: orphan, AgentID: "dead-agent", Size: 15, Chunks: []metastore.Chunk{{
		TopicPartition: metastore.TopicPartition{Topic: topic.ID, Partition: 0},
		Length:         15, OffsetCount: 1, BatchCount: 1,
	}}})
	if err == nil {
		t.Fatal("a forgotten (deleted) upload was committed")
	}
}
