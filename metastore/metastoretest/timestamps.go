package metastoretest

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/siltstream/silt/metastore"
)

// testIndexTimestampSearch checks IndexByTimestamp and IndexMaxTimestamp
// against a scan of the rows, on a partition with enough rows for a
// search to take many steps, with timestamps out of order, rows written
// batch by batch among them, and again after the log start has passed the
// rows holding the largest timestamps (a store may keep a running maximum
// that still counts them).
func testIndexTimestampSearch(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "ts", 2)
	tp := metastore.TopicPartition{Topic: top.ID}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 120; i++ {
		c := chunk(top.ID, 0, 1+rng.Int63n(3))
		c.MaxTimestamp = 1000 + int64(i)*10 + rng.Int63n(400) - 200
		switch {
		case i == 7:
			c.MaxTimestamp = 100000 // the largest, early: retention removes it below
		case i == 9:
			c.MaxTimestamp = 90000
		case i%10 == 3:
			c.MaxTimestamp = 100 // far in the past
		}
		c.MinTimestamp = c.MaxTimestamp - 50
		if i%4 == 1 { // written batch by batch: two contiguous batches, one row
			n := c.OffsetCount
			c.OffsetCount, c.Length = n+1, 100*(n+1)
			c.Batches = []metastore.ProducerBatch{
				{Length: 100 * n, OffsetCount: n, MinTimestamp: c.MinTimestamp, MaxTimestamp: c.MaxTimestamp - 5, ProducerID: -1},
				{Position: 100 * n, Length: 100, OffsetCount: 1, MinTimestamp: c.MinTimestamp, MaxTimestamp: c.MaxTimestamp, ProducerID: -1},
			}
		}
		other := chunk(top.ID, 1, 1)
		other.MaxTimestamp = 1 << 40
		commit(t, s, fmt.Sprintf("seg-%d", i), c, other)
	}
	check := func(when string) {
		t.Helper()
		rows, err := s.Index(ctx, tp, 0, 1<<62, 0)
		if err != nil {
			t.Fatal(err)
		}
		var best *metastore.IndexEntry
		for i := range rows {
			if best == nil || rows[i].MaxTimestamp > best.MaxTimestamp {
				best = &rows[i]
			}
		}
		e, ok, err := s.IndexMaxTimestamp(ctx, tp)
		if err != nil || ok != (best != nil) || (ok && e != *best) {
			t.Fatalf("%s: IndexMaxTimestamp = %+v, %v, %v; want %+v", when, e, ok, err, best)
		}
		for ts := int64(0); ts <= 101000; ts += 7 {
			if ts > 3000 && ts < 89000 {
				ts = 89000
			}
			var want *metastore.IndexEntry
			for i := range rows {
				if rows[i].MaxTimestamp >= ts {
					want = &rows[i]
					break
				}
			}
			e, ok, err := s.IndexByTimestamp(ctx, tp, ts)
			if err != nil || ok != (want != nil) || (ok && e != *want) {
				t.Fatalf("%s: IndexByTimestamp(%d) = %+v, %v, %v; want %+v", when, ts, e, ok, err, want)
			}
		}
	}
	check("all rows")
	rows, err := s.Index(ctx, tp, 0, 1<<62, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{8, 10, 60, len(rows)} {
		at := rows[len(rows)-1].LastOffset + 1
		if cut < len(rows) {
			at = rows[cut].BaseOffset
		}
		if _, err := s.AdvanceLogStart(ctx, tp, at); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("log start %d", at))
	}
}
