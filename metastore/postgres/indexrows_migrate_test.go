package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/siltstream/silt/metastore"
)

// Index rows written before migration 0017 (text segment keys, no running
// maximum timestamp) stay readable by every lookup after it, garbage
// collection still sees their references, and commits continue after them.
func TestMigrationNumbersSegments(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url, conn := databaseAt(ctx, t, 14)
	// Partition 0: offsets 0-2 in seg-a (max ts 300), 3-4 in seg-b (500),
	// 5-9 in seg-c (400); partition 1: 0-1 in seg-b, 2 in seg-lost, whose
	// record is missing (it should not be). Candidates: seg-a, and gone,
	// which has no record.
	const id = "00000000-0000-0000-0000-0000000000aa"
	if _, err := conn.Exec(ctx, `
		INSERT INTO topics (id, name, partitions) VALUES ('`+id+`', 't', 2);
		INSERT INTO partitions (topic_id, partition, high_watermark) VALUES ('`+id+`', 0, 10), ('`+id+`', 1, 3);
		INSERT INTO segments (key, agent, size, state, committed_at) VALUES
			('seg-a', 'a', 100, 'committed', now()), ('seg-b', 'a', 200, 'committed', now()),
			('seg-c', 'a', 300, 'committed', now());
		INSERT INTO index_entries (topic_id, partition, base_offset, last_offset, segment_key, position, length, batch_count, min_ts, max_ts) VALUES
			('`+id+`', 0, 0, 2, 'seg-a', 0, 30, 1, 100, 300),
			('`+id+`', 0, 3, 4, 'seg-b', 0, 20, 1, 100, 500),
			('`+id+`', 0, 5, 9, 'seg-c', 10, 50, 2, 100, 400),
			('`+id+`', 1, 0, 1, 'seg-b', 20, 20, 1, 100, 900),
			('`+id+`', 1, 2, 2, 'seg-lost', 0, 10, 1, 100, 950);
		INSERT INTO gc_candidates (segment_key) VALUES ('seg-a'), ('gone');`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	if err := Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var top metastore.TopicID
	top[15] = 0xaa
	p0, p1 := metastore.TopicPartition{Topic: top}, metastore.TopicPartition{Topic: top, Partition: 1}

	keys := func(es []metastore.IndexEntry) (ks []string) {
		for _, e := range es {
			ks = append(ks, e.SegmentKey)
		}
		return ks
	}
	rows, err := s.Index(ctx, p0, 0, 1<<20, 0)
	if err != nil || len(rows) != 3 || rows[2] != (metastore.IndexEntry{TopicPartition: p0, BaseOffset: 5, LastOffset: 9,
		SegmentKey: "seg-c", Position: 10, Length: 50, BatchCount: 2, MinTimestamp: 100, MaxTimestamp: 400}) {
		t.Fatalf("Index(p0) = %+v, %v", rows, err)
	}
	if rows, err := s.Index(ctx, p1, 0, 1<<20, 0); err != nil || len(rows) != 2 || keys(rows)[1] != "seg-lost" {
		t.Fatalf("Index(p1) = %+v, %v", rows, err)
	}
	if rows, err := s.IndexBySegment(ctx, "seg-b"); err != nil || len(rows) != 2 || rows[0].BaseOffset != 3 || rows[1].Partition != 1 {
		t.Fatalf("IndexBySegment(seg-b) = %+v, %v", rows, err)
	}
	for _, c := range []struct {
		ts   int64
		base int64
		ok   bool
	}{{0, 0, true}, {301, 3, true}, {450, 3, true}, {501, 0, false}} {
		e, ok, err := s.IndexByTimestamp(ctx, p0, c.ts)
		if err != nil || ok != c.ok || (ok && e.BaseOffset != c.base) {
			t.Fatalf("IndexByTimestamp(%d) = %+v, %v, %v; want base %d, %v", c.ts, e, ok, err, c.base, c.ok)
		}
	}
	if e, ok, err := s.IndexMaxTimestamp(ctx, p1); err != nil || !ok || e.SegmentKey != "seg-lost" {
		t.Fatalf("IndexMaxTimestamp(p1) = %+v, %v, %v", e, ok, err)
	}

	// The running maximum continues from the migrated rows: a row with
	// timestamp 450 after the log start passed seg-b's 500.
	if err := s.RecordUpload(ctx, "seg-d", "a"); err != nil {
		t.Fatal(err)
	}
	if res, err := s.CommitFlush(ctx, metastore.Flush{SegmentKey: "seg-d", AgentID: "a", Size: 10, Chunks: []metastore.Chunk{{
		TopicPartition: p0, Length: 10, OffsetCount: 1, BatchCount: 1, MinTimestamp: 450, MaxTimestamp: 450,
	}}}); err != nil || res.BaseOffsets[0] != 10 {
		t.Fatalf("CommitFlush after the migration = %+v, %v", res, err)
	}
	if _, err := s.AdvanceLogStart(ctx, p0, 5); err != nil {
		t.Fatal(err)
	}
	if e, ok, err := s.IndexByTimestamp(ctx, p0, 420); err != nil || !ok || e.SegmentKey != "seg-d" {
		t.Fatalf("IndexByTimestamp(420) after the log start moved = %+v, %v, %v", e, ok, err)
	}
	if e, ok, err := s.IndexMaxTimestamp(ctx, p0); err != nil || !ok || e.SegmentKey != "seg-d" {
		t.Fatalf("IndexMaxTimestamp after the log start moved = %+v, %v, %v", e, ok, err)
	}
	// seg-a lost its only row and is doomed; seg-b is still referenced.
	for more := true; more; {
		if _, more, err = s.DoomUnreferenced(ctx, 10); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := s.DoomedObjects(ctx, -time.Hour, 10)
	if err != nil || len(objs) != 1 || objs[0].Key != "seg-a" || objs[0].Size != 100 {
		t.Fatalf("doomed after the migration: %+v, %v; want seg-a", objs, err)
	}
}
