package agent_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
)

// TestJanitorDeletesOnlyOrphans: an upload that was recorded and written
// but never committed (a crash between upload and commit) is deleted;
// committed segments are untouched; and the forgotten upload can no longer
// be committed, so no index row can point at the deleted object.
func TestJanitorDeletesOnlyOrphans(t *testing.T) {
	ta := startAgent(t, nil)
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

	j := &agent.Janitor{AgentID: "test", Store: ta.store, Bucket: ta.bucket, Log: slog.Default(), MinAge: 0}
	// With MinAge 0 the agent's own unused key reservations (recorded
	// uploads without objects) are collected too; in service orphan.min.age
	// is far longer than a reservation may wait (keyMaxAge).
	n, err := j.CollectOnce(ctx)
	if err != nil || n < 1 {
		t.Fatalf("collect: deleted %d, err %v; want the orphan deleted", n, err)
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

// commitLandsAfterListing is the store as the janitor sees it when a slow
// flush's commit lands between the janitor listing orphans and acting on
// them: Orphans lists, then the commit happens.
type commitLandsAfterListing struct {
	metastore.Store
	land func(ctx context.Context) error
}

func (s *commitLandsAfterListing) Orphans(ctx context.Context, olderThan time.Time) ([]metastore.Upload, error) {
	orphans, err := s.Store.Orphans(ctx, olderThan)
	if err != nil {
		return nil, err
	}
	return orphans, s.land(ctx)
}

// TestJanitorKeepsUploadCommittedAfterListing: a flush whose commit kept
// retrying past orphan.min.age is listed as an orphan; the commit then
// lands (its producers are acknowledged); the janitor must not delete the
// object, which the index now points at.
func TestJanitorKeepsUploadCommittedAfterListing(t *testing.T) {
	ta := startAgent(t, nil)
	createTopic(t, ta.client(t), "slow", 1, nil)
	ctx := context.Background()
	topic, err := ta.store.Topic(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	const key = "segments/slow-commit.seg"
	if err := ta.store.RecordUpload(ctx, key, "slow-agent"); err != nil {
		t.Fatal(err)
	}
	if err := ta.bucket.Put(ctx, key, []byte("acknowledged after a long retry")); err != nil {
		t.Fatal(err)
	}
	store := &commitLandsAfterListing{Store: ta.store, land: func(ctx context.Context) error {
		_, err := ta.store.CommitFlush(ctx, metastore.Flush{SegmentKey: key, AgentID: "slow-agent", Size: 31, Chunks: []metastore.Chunk{{
			TopicPartition: metastore.TopicPartition{Topic: topic.ID, Partition: 0},
			Length:         31, OffsetCount: 1, BatchCount: 1,
		}}})
		return err
	}}

	j := &agent.Janitor{AgentID: "test", Store: store, Bucket: ta.bucket, Log: slog.Default(), MinAge: 0}
	if _, err := j.CollectOnce(ctx); err != nil {
		t.Fatalf("collect: %v", err)
	}
	rows, err := ta.store.IndexBySegment(ctx, key)
	if err != nil || len(rows) != 1 {
		t.Fatalf("index rows of the committed segment: %+v, %v; want 1", rows, err)
	}
	if _, err := ta.bucket.Head(ctx, key); err != nil {
		t.Fatalf("the janitor deleted a committed segment the index points at: %v", err)
	}
}
