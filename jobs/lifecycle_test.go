package jobs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltstream/silt/internal/promtest"
	"github.com/siltstream/silt/jobs"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/mem"
)

// commitAt commits a one-chunk segment of n offsets whose batches' max
// timestamp is ts.
func commitAt(t *testing.T, st metastore.Store, b objectstore.Bucket, key string, tp metastore.TopicPartition, n, ts int64) {
	t.Helper()
	ctx := context.Background()
	if err := st.RecordUpload(ctx, key, "a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, key, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CommitFlush(ctx, metastore.Flush{SegmentKey: key, AgentID: "a", Size: 100, Chunks: []metastore.Chunk{{
		TopicPartition: tp, Length: 100, OffsetCount: n, BatchCount: 1, MinTimestamp: ts, MaxTimestamp: ts,
	}}}); err != nil {
		t.Fatal(err)
	}
}

func exists(t *testing.T, b objectstore.Bucket, key string) bool {
	t.Helper()
	_, err := b.Head(context.Background(), key)
	if err != nil && !objectstore.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// Retention moves the log start past rows older than retention.ms, tells
// the agent, counts the bytes; the collector then dooms the expired
// segment at once but deletes it only after the grace period; kept data
// stays.
func TestRetentionThenGCAfterGrace(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	now := time.UnixMilli(10_000_000)
	topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1, Config: map[string]string{"retention.ms": "60000"}})
	if err != nil {
		t.Fatal(err)
	}
	tp := metastore.TopicPartition{Topic: topic.ID}
	commitAt(t, st, b, "segments/old.seg", tp, 5, now.UnixMilli()-120_000)
	commitAt(t, st, b, "segments/new.seg", tp, 5, now.UnixMilli()-1_000)

	m := jobs.NewMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	moved := map[metastore.TopicPartition]int64{}
	r := &jobs.Retention{Store: st, Log: discard(), Metrics: m, Now: func() time.Time { return now },
		OnLogStart: func(tp metastore.TopicPartition, ls int64) { moved[tp] = ls }}
	a, err := r.ApplyOnce(ctx)
	if err != nil || a.Moved != 1 || a.ExpiredRows != 1 || a.ExpiredBytes != 100 {
		t.Fatalf("ApplyOnce = %+v, %v; want one partition moved, one 100-byte row expired", a, err)
	}
	if moved[tp] != 5 {
		t.Fatalf("agent told %v, want log start 5", moved)
	}
	if ps, _ := st.Partitions(ctx, topic.ID); ps[0].LogStartOffset != 5 {
		t.Fatalf("stored log start %d, want 5", ps[0].LogStartOffset)
	}

	gc := &jobs.GC{Store: st, Bucket: b, Log: discard(), OrphanMinAge: time.Hour, Grace: time.Hour, Metrics: m}
	c, err := gc.CollectOnce(ctx)
	if err != nil || c.Unreferenced != 1 || c.Deleted != 0 {
		t.Fatalf("collect within grace = %+v, %v; want one doomed, none deleted", c, err)
	}
	if !exists(t, b, "segments/old.seg") {
		t.Fatal("an expired object was deleted before its grace period")
	}
	got := promtest.Gather(t, reg)
	if got["silt_gc_backlog_objects"] != 1 || got["silt_gc_backlog_bytes"] != 100 || got["silt_retention_expired_bytes_total"] != 100 ||
		got["silt_bucket_objects"] != 2 {
		t.Fatalf("metrics %v", got)
	}

	gc.Grace = 0
	c, err = gc.CollectOnce(ctx)
	if err != nil || c.Deleted != 1 || c.DeletedBytes != 100 {
		t.Fatalf("collect past grace = %+v, %v; want the expired segment deleted", c, err)
	}
	if exists(t, b, "segments/old.seg") || !exists(t, b, "segments/new.seg") {
		t.Fatal("want the expired segment gone and the kept one there")
	}
	got = promtest.Gather(t, reg)
	if got["silt_gc_backlog_objects"] != 0 || got["silt_gc_deleted_objects_total"] != 1 || got["silt_gc_deleted_bytes_total"] != 100 ||
		got["silt_bucket_objects"] != 1 {
		t.Fatalf("metrics %v", got)
	}
}

// Kafka's topic configs decide: a compacted topic is not expired, -1 keeps
// forever, retention.bytes caps the partition, the default is a week.
func TestRetentionPolicies(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	now := time.Now()
	old := now.Add(-30 * 24 * time.Hour).UnixMilli() // older than the default week
	for i, tc := range []struct {
		config    map[string]string
		wantStart int64
	}{
		{map[string]string{"cleanup.policy": "compact", "retention.ms": "1000"}, 0},
		{map[string]string{"retention.ms": "-1"}, 0},
		// 4 rows of 100 bytes: Kafka deletes the oldest only while what
		// remains after it is at least retention.bytes, so 3 stay.
		{map[string]string{"retention.ms": "-1", "retention.bytes": "250"}, 1 * 4},
		{map[string]string{}, 4 * 4},
		{map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "1000"}, 4 * 4},
	} {
		name := fmt.Sprintf("t%d", i)
		topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: name, Partitions: 1, Config: tc.config})
		if err != nil {
			t.Fatal(err)
		}
		tp := metastore.TopicPartition{Topic: topic.ID}
		for j := 0; j < 4; j++ {
			commitAt(t, st, b, fmt.Sprintf("segments/%s-%d.seg", name, j), tp, 4, old)
		}
		r := &jobs.Retention{Store: st, Log: discard(), Now: func() time.Time { return now }}
		if _, err := r.ApplyOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if ps, _ := st.Partitions(ctx, topic.ID); ps[0].LogStartOffset != tc.wantStart {
			t.Errorf("config %v: log start %d, want %d", tc.config, ps[0].LogStartOffset, tc.wantStart)
		}
	}
}

// A deleted topic's segments are collected once no other topic's rows
// share them.
func TestGCCollectsDeletedTopic(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	gone, _ := st.CreateTopic(ctx, metastore.TopicSpec{Name: "gone", Partitions: 1})
	commitAt(t, st, b, "segments/gone.seg", metastore.TopicPartition{Topic: gone.ID}, 3, 0)
	if err := st.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	gc := &jobs.GC{Store: st, Bucket: b, Log: discard(), OrphanMinAge: time.Hour, Grace: 0}
	if c, err := gc.CollectOnce(ctx); err != nil || c.Deleted != 1 {
		t.Fatalf("collect = %+v, %v; want the deleted topic's segment deleted", c, err)
	}
	if exists(t, b, "segments/gone.seg") {
		t.Fatal("deleted topic's segment still in the bucket")
	}
}
