package jobs_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/siltstream/silt/jobs"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/sqlite"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/mem"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// commitSegment uploads and commits a one-chunk segment of n offsets, as
// the write pipeline would.
func commitSegment(t *testing.T, st metastore.Store, b objectstore.Bucket, key string, tp metastore.TopicPartition, n int64) {
	t.Helper()
	ctx := context.Background()
	if err := st.RecordUpload(ctx, key, "a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, key, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CommitFlush(ctx, metastore.Flush{SegmentKey: key, AgentID: "a", Size: 10, Chunks: []metastore.Chunk{{
		TopicPartition: tp, Length: 10, OffsetCount: n, BatchCount: 1,
	}}}); err != nil {
		t.Fatal(err)
	}
}

// The janitor deletes an upload that was recorded and written but never
// committed; committed segments stay; and the forgotten upload can no
// longer commit, so no index row can point at the deleted object.
func TestJanitorDeletesOnlyOrphans(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	tp := metastore.TopicPartition{Topic: topic.ID}
	commitSegment(t, st, b, "segments/committed.seg", tp, 1)
	const orphan = "segments/crashed-before-commit.seg"
	if err := st.RecordUpload(ctx, orphan, "dead-agent"); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, orphan, []byte("never committed")); err != nil {
		t.Fatal(err)
	}
	j := &jobs.GC{Store: st, Bucket: b, Log: discard(), OrphanMinAge: 0, Grace: 0}
	if c, err := j.CollectOnce(ctx); err != nil || c.Orphans != 1 || c.Deleted != 1 {
		t.Fatalf("collect: %+v, err %v; want the one orphan doomed and deleted", c, err)
	}
	if _, err := b.Head(ctx, orphan); !objectstore.IsNotFound(err) {
		t.Fatalf("orphan still in the bucket: %v", err)
	}
	if _, err := b.Head(ctx, "segments/committed.seg"); err != nil {
		t.Fatalf("committed segment: %v", err)
	}
	_, err = st.CommitFlush(ctx, metastore.Flush{SegmentKey: orphan, AgentID: "dead-agent", Size: 15, Chunks: []metastore.Chunk{{
		TopicPartition: tp, Length: 15, OffsetCount: 1, BatchCount: 1,
	}}})
	if err == nil {
		t.Fatal("a forgotten (deleted) upload was committed")
	}
}

// Lag is the high watermark (from the store) minus the committed offset,
// summed per group; deleted topics and partitions count nothing.
func TestLagFromTheStore(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	commitSegment(t, st, b, "segments/1.seg", metastore.TopicPartition{Topic: topic.ID, Partition: 0}, 10)
	commitSegment(t, st, b, "segments/2.seg", metastore.TopicPartition{Topic: topic.ID, Partition: 1}, 4)
	if err := st.CommitOffsets(ctx, "g", []metastore.CommittedOffset{
		{Topic: "t", Partition: 0, Offset: 7}, {Topic: "t", Partition: 1, Offset: 4},
		{Topic: "t", Partition: 5, Offset: 1}, {Topic: "gone", Partition: 0, Offset: 1},
	}); err != nil {
		t.Fatal(err)
	}
	l := &jobs.LagReporter{AgentID: "a", Store: st, Log: discard()}
	lag, err := l.ComputeNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lag["g"] != 3 {
		t.Fatalf("lag %v, want g: 3", lag)
	}
}

// commitLandsAfterListing is the store as the janitor sees it when a slow
// flush's commit lands between the janitor listing orphans and acting on
// them: Orphans lists, then the commit happens.
type commitLandsAfterListing struct {
	jobs.GCStore
	land func(ctx context.Context) error
}

func (s *commitLandsAfterListing) Orphans(ctx context.Context, olderThan time.Time) ([]metastore.Upload, error) {
	orphans, err := s.GCStore.Orphans(ctx, olderThan)
	if err != nil {
		return nil, err
	}
	return orphans, s.land(ctx)
}

// Issue 11, item 1: a flush whose commit kept retrying past
// orphan.min.age is listed as an orphan; the commit then lands (its
// producers are acknowledged); the janitor must not delete the object,
// which the index now points at.
func TestJanitorKeepsUploadCommittedAfterListing(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "slow", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	const key = "segments/slow-commit.seg"
	if err := st.RecordUpload(ctx, key, "slow-agent"); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, key, []byte("acknowledged after a long retry")); err != nil {
		t.Fatal(err)
	}
	store := &commitLandsAfterListing{GCStore: st, land: func(ctx context.Context) error {
		_, err := st.CommitFlush(ctx, metastore.Flush{SegmentKey: key, AgentID: "slow-agent", Size: 31, Chunks: []metastore.Chunk{{
			TopicPartition: metastore.TopicPartition{Topic: topic.ID},
			Length:         31, OffsetCount: 1, BatchCount: 1,
		}}})
		return err
	}}
	j := &jobs.GC{Store: store, Bucket: b, Log: discard(), OrphanMinAge: 0, Grace: 0}
	if _, err := j.CollectOnce(ctx); err != nil {
		t.Fatalf("collect: %v", err)
	}
	rows, err := st.IndexBySegment(ctx, key)
	if err != nil || len(rows) != 1 {
		t.Fatalf("index rows of the committed segment: %+v, %v; want 1", rows, err)
	}
	if _, err := b.Head(ctx, key); err != nil {
		t.Fatalf("the janitor deleted a committed segment the index points at: %v", err)
	}
}
