package metastoretest

import (
	"sort"
	"testing"
	"time"

	"github.com/siltstream/silt/metastore"
)

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
