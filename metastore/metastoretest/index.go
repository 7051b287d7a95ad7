package metastoretest

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/siltstream/silt/metastore"
)

func testIndex(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "t", 2)
	tp := metastore.TopicPartition{Topic: top.ID}
	// Chunks [0,9] [10,19] ... [90,99], 1000 bytes each; partition 1 gets
	// interleaved rows that must never show up.
	for i := 0; i < 10; i++ {
		c := chunk(top.ID, 0, 10)
		c.Length = 1000
		commit(t, s, fmt.Sprintf("seg-%d", i), c, chunk(top.ID, 1, 1))
	}
	bases := func(es []metastore.IndexEntry) []int64 {
		out := []int64{}
		for _, e := range es {
			if e.TopicPartition != tp {
				t.Fatalf("Index returned a row of another partition: %+v", e)
			}
			out = append(out, e.BaseOffset)
		}
		return out
	}
	cases := []struct {
		offset, maxBytes int64
		limit            int
		want             []int64
	}{
		{0, 1 << 40, 100, []int64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}},
		{0, 1 << 40, 3, []int64{0, 10, 20}},
		{15, 1 << 40, 2, []int64{10, 20}},  // starts at the chunk holding the offset
		{19, 1 << 40, 1, []int64{10}},      // last offset of a chunk
		{20, 1 << 40, 1, []int64{20}},      // first offset of a chunk
		{0, 1, 100, []int64{0}},            // at least one row, however small the budget
		{0, 0, 100, []int64{0}},            // even a zero budget
		{5, 1000, 100, []int64{0}},         // exactly one chunk's bytes
		{5, 1001, 100, []int64{0, 10}},     // stops once the budget is reached
		{5, 2500, 100, []int64{0, 10, 20}}, //
		{95, 1 << 40, 100, []int64{90}},    //
		{100, 1 << 40, 100, []int64{}},     // at the high watermark
		{1000, 1 << 40, 100, []int64{}},    // beyond it
		{-1, 1500, 100, []int64{0, 10}},    // before the log start
	}
	for _, c := range cases {
		es, err := s.Index(ctx, tp, c.offset, c.maxBytes, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := bases(es); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Index(offset=%d, maxBytes=%d, limit=%d) bases = %v, want %v", c.offset, c.maxBytes, c.limit, got, c.want)
		}
	}
	if es, err := s.Index(ctx, metastore.TopicPartition{Topic: top.ID, Partition: 9}, 0, 1<<20, 10); err != nil || len(es) != 0 {
		t.Fatalf("Index of a missing partition = %+v, %v; want nothing", es, err)
	}
}

func testIndexTimestamps(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "t", 2)
	tp := metastore.TopicPartition{Topic: top.ID}
	if _, ok, err := s.IndexByTimestamp(ctx, tp, 0); err != nil || ok {
		t.Fatalf("IndexByTimestamp on an empty partition: ok=%v err=%v", ok, err)
	}
	if _, ok, err := s.IndexMaxTimestamp(ctx, tp); err != nil || ok {
		t.Fatalf("IndexMaxTimestamp on an empty partition: ok=%v err=%v", ok, err)
	}
	// Timestamps are not monotonic across chunks (producers set them).
	spans := [][2]int64{{100, 200}, {150, 500}, {300, 400}, {600, 700}, {50, 700}, {650, 690}}
	for i, sp := range spans {
		c := chunk(top.ID, 0, 2)
		c.MinTimestamp, c.MaxTimestamp = sp[0], sp[1]
		other := chunk(top.ID, 1, 1)
		other.MinTimestamp, other.MaxTimestamp = 5000, 9000
		commit(t, s, fmt.Sprintf("seg-%d", i), c, other)
	}
	cases := []struct {
		ts   int64
		base int64
		ok   bool
	}{
		{0, 0, true},
		{200, 0, true},
		{201, 2, true},
		{450, 2, true},
		{501, 6, true},
		{700, 6, true},
		{701, 0, false},
	}
	for _, c := range cases {
		e, ok, err := s.IndexByTimestamp(ctx, tp, c.ts)
		if err != nil {
			t.Fatal(err)
		}
		if ok != c.ok || (ok && e.BaseOffset != c.base) {
			t.Errorf("IndexByTimestamp(%d) = base %d ok=%v, want base %d ok=%v", c.ts, e.BaseOffset, ok, c.base, c.ok)
		}
		if ok && (e.TopicPartition != tp || e.MaxTimestamp < c.ts) {
			t.Errorf("IndexByTimestamp(%d) returned %+v", c.ts, e)
		}
	}
	e, ok, err := s.IndexMaxTimestamp(ctx, tp)
	if err != nil || !ok {
		t.Fatalf("IndexMaxTimestamp: ok=%v err=%v", ok, err)
	}
	if e.BaseOffset != 6 || e.MaxTimestamp != 700 || e.LastOffset != 7 || e.SegmentKey != "seg-3" {
		t.Fatalf("IndexMaxTimestamp = %+v, want the earliest row with ts 700 (base 6, seg-3)", e)
	}
}
