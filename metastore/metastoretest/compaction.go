package metastoretest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/siltstream/silt/metastore"
)

// replacement is the swap of rows old for one row of key, as a compactor
// builds it.
func replacement(tp metastore.TopicPartition, key string, old []metastore.IndexEntry) metastore.Replacement {
	r := metastore.Replacement{TopicPartition: tp, Old: old, SegmentKey: key, AgentID: "agent-1", Position: 16,
		MinTimestamp: old[0].MinTimestamp, MaxTimestamp: old[0].MaxTimestamp}
	for _, e := range old {
		r.Length += e.Length / 2 // recompressed
		r.BatchCount += e.BatchCount
		r.MinTimestamp = min(r.MinTimestamp, e.MinTimestamp)
		r.MaxTimestamp = max(r.MaxTimestamp, e.MaxTimestamp)
	}
	r.Size = r.Length + 100
	return r
}

func doomAll(t *testing.T, s metastore.Store) int {
	t.Helper()
	n, _, err := s.DoomUnreferenced(ctxFor(t), 1000)
	if err != nil {
		t.Fatalf("DoomUnreferenced: %v", err)
	}
	return n
}

// testReplaceIndex: a swap replaces a partition's rows with one row of the
// new segment, which reads like any other (Index, IndexBySegment,
// PartitionBytes, the timestamp lookups); the old segments are doomed once
// no other partition's rows use them; a retry is harmless; an upload
// never recorded is refused.
func testReplaceIndex(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "cmp", 2)
	tp0 := metastore.TopicPartition{Topic: top.ID, Partition: 0}
	tp1 := metastore.TopicPartition{Topic: top.ID, Partition: 1}
	for i := 0; i < 3; i++ { // partition 0: [0,9] [10,19] [20,29]
		c0, c1 := chunk(top.ID, 0, 10), chunk(top.ID, 1, 5)
		c0.MinTimestamp, c0.MaxTimestamp = int64(1000*i), int64(1000*i+500)
		commit(t, s, fmt.Sprintf("flush-%d", i), c0, c1)
	}
	c3 := chunk(top.ID, 0, 10) // [30,39] stays
	c3.MaxTimestamp = 3000
	commit(t, s, "flush-3", c3)

	if _, err := s.ReplaceIndex(ctx, replacement(tp0, "never-recorded", index(t, s, tp0, 0)[:3])); !errors.Is(err, metastore.ErrUploadNotRecorded) {
		t.Fatalf("ReplaceIndex of an unrecorded upload = %v, want ErrUploadNotRecorded", err)
	}
	if err := s.RecordUpload(ctx, "compacted-0", "agent-1"); err != nil {
		t.Fatal(err)
	}
	r := replacement(tp0, "compacted-0", index(t, s, tp0, 0)[:3])
	if ok, err := s.ReplaceIndex(ctx, r); err != nil || !ok {
		t.Fatalf("ReplaceIndex = %v, %v; want replaced", ok, err)
	}
	want := metastore.IndexEntry{TopicPartition: tp0, BaseOffset: 0, LastOffset: 29, SegmentKey: "compacted-0",
		Position: 16, Length: 1500, BatchCount: 3, MinTimestamp: 0, MaxTimestamp: 2500}
	rows := index(t, s, tp0, 0)
	if len(rows) != 2 || rows[0] != want || rows[1].BaseOffset != 30 || rows[1].SegmentKey != "flush-3" {
		t.Fatalf("index after the swap %+v, want [%+v, flush-3's row]", rows, want)
	}
	if got := index(t, s, tp0, 17); len(got) != 2 || got[0] != want {
		t.Fatalf("Index from offset 17 = %+v, want the compacted row first", got)
	}
	if got, err := s.IndexBySegment(ctx, "compacted-0"); err != nil || !reflect.DeepEqual(got, []metastore.IndexEntry{want}) {
		t.Fatalf("IndexBySegment(compacted-0) = %+v, %v; want [%+v]", got, err, want)
	}
	if e, ok, err := s.IndexByTimestamp(ctx, tp0, 1800); err != nil || !ok || e != want {
		t.Fatalf("IndexByTimestamp(1800) = %+v, %v, %v; want the compacted row", e, ok, err)
	}
	if e, ok, err := s.IndexByTimestamp(ctx, tp0, 2600); err != nil || !ok || e.BaseOffset != 30 {
		t.Fatalf("IndexByTimestamp(2600) = %+v, %v, %v; want the row after", e, ok, err)
	}
	if pb, err := s.PartitionBytes(ctx, top.ID); err != nil || pb[0] != 1500+1000 || pb[1] != 1500 {
		t.Fatalf("PartitionBytes = %v, %v; want 2500 and 1500", pb, err)
	}
	if ps := partitionStates(t, s, top.ID); ps[0].HighWatermark != 40 || ps[0].LogStartOffset != 0 {
		t.Fatalf("partition after the swap %+v: offsets must not move", ps[0])
	}
	// flush-0..2 still hold partition 1's rows.
	if n := doomAll(t, s); n != 0 {
		t.Fatalf("doomed %d segments that partition 1 still reads", n)
	}
	// A retry of the committed swap changes nothing and says it holds.
	if ok, err := s.ReplaceIndex(ctx, r); err != nil || !ok {
		t.Fatalf("retried ReplaceIndex = %v, %v; want true", ok, err)
	}
	if got := index(t, s, tp0, 0); len(got) != 2 || got[0] != want {
		t.Fatalf("index after a retried swap %+v", got)
	}

	if err := s.RecordUpload(ctx, "compacted-1", "agent-1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ReplaceIndex(ctx, replacement(tp1, "compacted-1", index(t, s, tp1, 0))); err != nil || !ok {
		t.Fatalf("ReplaceIndex of partition 1 = %v, %v", ok, err)
	}
	if n := doomAll(t, s); n != 3 {
		t.Fatalf("doomed %d segments, want flush-0..2 now that both partitions moved out", n)
	}
	// The compacted segments stay: their rows are live. Retention past
	// them dooms them like any segment.
	if n := doomAll(t, s); n != 0 {
		t.Fatalf("doomed %d more", n)
	}
	if _, err := s.AdvanceLogStart(ctx, tp0, 30); err != nil {
		t.Fatal(err)
	}
	if n := doomAll(t, s); n != 1 {
		t.Fatalf("after retention past compacted-0, doomed %d, want 1", n)
	}
}

// testReplaceIndexChanged: rows that changed since the compactor read them
// are left alone: retention or DeleteRecords pruned one, a second
// compactor swapped them first, the topic was deleted. Nothing changes
// and the loser's upload can be forgotten.
func testReplaceIndexChanged(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "cmpx", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	for i := 0; i < 4; i++ {
		commit(t, s, fmt.Sprintf("x-%d", i), chunk(top.ID, 0, 10))
	}
	old := index(t, s, tp, 0)
	for _, k := range []string{"a", "b", "c", "d"} {
		if err := s.RecordUpload(ctx, k, "agent-1"); err != nil {
			t.Fatal(err)
		}
	}
	// Retention pruned the first row after the compactor read it.
	if _, err := s.AdvanceLogStart(ctx, tp, 10); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ReplaceIndex(ctx, replacement(tp, "a", old)); err != nil || ok {
		t.Fatalf("ReplaceIndex over pruned rows = %v, %v; want false", ok, err)
	}
	if got := bases(index(t, s, tp, 0)); !reflect.DeepEqual(got, []int64{10, 20, 30}) {
		t.Fatalf("rows after a refused swap %v", got)
	}
	if forgotten, err := s.ForgetUpload(ctx, "a"); err != nil || !forgotten {
		t.Fatalf("ForgetUpload after a refused swap = %v, %v", forgotten, err)
	}
	// A row range that is not the whole set of rows in it, or a row that
	// differs, is refused too.
	if ok, err := s.ReplaceIndex(ctx, replacement(tp, "b", []metastore.IndexEntry{old[1], old[3]})); err != nil || ok {
		t.Fatalf("ReplaceIndex of rows with a gap = %v, %v; want false", ok, err)
	}
	moved := old[1]
	moved.SegmentKey = "elsewhere"
	if ok, err := s.ReplaceIndex(ctx, replacement(tp, "b", []metastore.IndexEntry{moved})); err != nil || ok {
		t.Fatalf("ReplaceIndex of a changed row = %v, %v; want false", ok, err)
	}
	// Two compactors of the same rows: one wins.
	if ok, err := s.ReplaceIndex(ctx, replacement(tp, "b", old[1:])); err != nil || !ok {
		t.Fatalf("first compactor = %v, %v", ok, err)
	}
	if ok, err := s.ReplaceIndex(ctx, replacement(tp, "c", old[1:3])); err != nil || ok {
		t.Fatalf("second compactor over swapped rows = %v, %v; want false", ok, err)
	}
	if got := index(t, s, tp, 0); len(got) != 1 || got[0].SegmentKey != "b" || got[0].BaseOffset != 10 || got[0].LastOffset != 39 {
		t.Fatalf("rows %+v, want b's row over [10,39]", got)
	}
	// A deleted topic.
	if err := s.DeleteTopic(ctx, "cmpx"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ReplaceIndex(ctx, metastore.Replacement{TopicPartition: tp, SegmentKey: "d"}); err == nil || ok {
		t.Fatalf("ReplaceIndex of no rows = %v, %v; want an error", ok, err)
	}
	if ok, err := s.ReplaceIndex(ctx, replacement(tp, "d", old[1:])); err != nil || ok {
		t.Fatalf("ReplaceIndex on a deleted topic = %v, %v; want false", ok, err)
	}
}

// testReplaceIndexRaces runs, at once, two compactors swapping the same
// rows, retention moving the log start and commits appending; then checks
// that at most one swap won, that every refused swap changed nothing, and
// that the index still covers [log start, high watermark) without gaps or
// overlaps.
func testReplaceIndexRaces(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "cmprace", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	for round := 0; round < 10; round++ {
		for i := 0; i < 4; i++ {
			commit(t, s, fmt.Sprintf("r%d-%d", round, i), chunk(top.ID, 0, 10))
		}
		ls := logStart(t, s, tp)
		old := index(t, s, tp, ls)[:4]
		var (
			wg   sync.WaitGroup
			won  = make([]bool, 2)
			errs = make([]error, 4)
		)
		for c := 0; c < 2; c++ {
			key := fmt.Sprintf("c%d-%d", round, c)
			if err := s.RecordUpload(ctx, key, "agent-1"); err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				won[c], errs[c] = s.ReplaceIndex(ctx, replacement(tp, key, old))
			}()
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			// Every other round, retention cuts into the rows swapped.
			if round%2 == 0 {
				_, errs[2] = s.AdvanceLogStart(ctx, tp, old[1].BaseOffset)
			}
		}()
		go func() {
			defer wg.Done()
			if err := s.RecordUpload(ctx, fmt.Sprintf("tail-%d", round), "agent-1"); err != nil {
				errs[3] = err
				return
			}
			c := chunk(top.ID, 0, 10)
			_, errs[3] = s.CommitFlush(ctx, metastore.Flush{SegmentKey: fmt.Sprintf("tail-%d", round), AgentID: "agent-1", Size: c.Length, Chunks: []metastore.Chunk{c}})
		}()
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if won[0] && won[1] {
			t.Fatalf("round %d: both compactors swapped the same rows", round)
		}
		rows := index(t, s, tp, 0)
		ps := partitionStates(t, s, top.ID)[0]
		if len(rows) == 0 || rows[0].BaseOffset > ps.LogStartOffset || rows[len(rows)-1].LastOffset != ps.HighWatermark-1 {
			t.Fatalf("round %d: rows %+v do not cover [%d, %d)", round, rows, ps.LogStartOffset, ps.HighWatermark)
		}
		for i := 1; i < len(rows); i++ {
			if rows[i].BaseOffset != rows[i-1].LastOffset+1 {
				t.Fatalf("round %d: rows %+v not contiguous at %d", round, rows, i)
			}
		}
		swapped := won[0] || won[1]
		for c := 0; c < 2; c++ {
			key := fmt.Sprintf("c%d-%d", round, c)
			inIndex := false
			for _, r := range rows {
				inIndex = inIndex || r.SegmentKey == key
			}
			if inIndex != won[c] {
				t.Fatalf("round %d: compactor %d won=%v but its row in the index=%v", round, c, won[c], inIndex)
			}
			if !won[c] {
				if forgotten, err := s.ForgetUpload(ctx, key); err != nil || !forgotten {
					t.Fatalf("round %d: forget the loser's upload = %v, %v", round, forgotten, err)
				}
			}
		}
		if round%2 == 1 && !swapped {
			t.Fatalf("round %d: without retention racing, one compactor must win", round)
		}
	}
	// Every segment whose rows are all gone is doomed; none that is read.
	for doomAll(t, s) > 0 {
	}
	live := map[string]bool{}
	for _, r := range index(t, s, tp, 0) {
		live[r.SegmentKey] = true
	}
	doomed, err := s.DoomedObjects(ctxFor(t), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range doomed {
		if live[d.Key] {
			t.Fatalf("segment %s doomed while an index row references it", d.Key)
		}
	}
}
