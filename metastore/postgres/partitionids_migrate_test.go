package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/siltstream/silt/metastore"
)

// Migration 0021 names partitions by number in index rows and segments'
// chunk lists. Rows of a partition that no longer exists (there should be
// none) are dropped and their segments become garbage candidates; a chunk
// list naming such a partition keeps its place with id 0, which matches no
// row.
func TestMigrationNumbersPartitions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url, conn := databaseAt(ctx, t, 20)
	// Topic t has partitions 0 and 1; seg-a holds 0-2 of t/0, 0-1 of t/1
	// and a chunk of a deleted topic's partition, whose row is in seg-b
	// alone.
	const (
		id   = "00000000-0000-0000-0000-0000000000aa"
		gone = "00000000-0000-0000-0000-0000000000bb"
	)
	if _, err := conn.Exec(ctx, `
		INSERT INTO topics (id, name, partitions) VALUES ('`+id+`', 't', 2);
		INSERT INTO partitions (topic_id, partition, high_watermark, max_ts) VALUES ('`+id+`', 0, 3, 300), ('`+id+`', 1, 2, 900);
		INSERT INTO segments (key, agent, size, state, committed_at, chunk_topic_ids, chunk_partitions, chunk_starts, chunk_ends) VALUES
			('seg-a', 'a', 100, 'committed', now(), '{`+id+`,`+gone+`,`+id+`}', '{0,0,1}', '{0,0,0}', '{3,5,2}'),
			('seg-b', 'a', 200, 'committed', now(), '{`+gone+`}', '{0}', '{5}', '{6}');
		INSERT INTO index_entries (topic_id, partition, base_offset, last_offset, segment_id, position, length, batch_count, min_ts, max_ts, run_max_ts)
		SELECT v.t::uuid, v.p, v.b, v.l, s.id, v.pos, v.len, 1, 100, v.ts, v.ts
		FROM (VALUES ('`+id+`', 0, 0, 2, 'seg-a', 0, 30, 300), ('`+id+`', 1, 0, 1, 'seg-a', 50, 20, 900),
		             ('`+gone+`', 0, 5, 5, 'seg-b', 0, 10, 950)) AS v(t, p, b, l, k, pos, len, ts)
		JOIN segments s ON s.key = v.k;`); err != nil {
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

	if rows, err := s.Index(ctx, p0, 0, 1<<20, 0); err != nil || len(rows) != 1 || rows[0] != (metastore.IndexEntry{
		TopicPartition: p0, BaseOffset: 0, LastOffset: 2, SegmentKey: "seg-a", Length: 30, BatchCount: 1, MinTimestamp: 100, MaxTimestamp: 300}) {
		t.Fatalf("Index(p0) = %+v, %v", rows, err)
	}
	if rows, err := s.IndexBySegment(ctx, "seg-a"); err != nil || len(rows) != 2 || rows[0].TopicPartition != p0 || rows[1].TopicPartition != p1 {
		t.Fatalf("IndexBySegment(seg-a) = %+v, %v", rows, err)
	}
	if e, ok, err := s.IndexMaxTimestamp(ctx, p1); err != nil || !ok || e.MaxTimestamp != 900 {
		t.Fatalf("IndexMaxTimestamp(p1) = %+v, %v, %v", e, ok, err)
	}
	// A commit continues after the migrated rows.
	if err := s.RecordUpload(ctx, "seg-c", "a"); err != nil {
		t.Fatal(err)
	}
	if res, err := s.CommitFlush(ctx, metastore.Flush{SegmentKey: "seg-c", AgentID: "a", Size: 10, Chunks: []metastore.Chunk{{
		TopicPartition: p1, Length: 10, OffsetCount: 1, BatchCount: 1, MinTimestamp: 450, MaxTimestamp: 450,
	}}}); err != nil || res.BaseOffsets[0] != 2 {
		t.Fatalf("CommitFlush after the migration = %+v, %v", res, err)
	}
	// seg-b's only row was dropped: it is doomed, and seg-a is not.
	for more := true; more; {
		if _, more, err = s.DoomUnreferenced(ctx, 10); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := s.DoomedObjects(ctx, -time.Hour, 10)
	if err != nil || len(objs) != 1 || objs[0].Key != "seg-b" {
		t.Fatalf("doomed after the migration: %+v, %v; want seg-b", objs, err)
	}
}
