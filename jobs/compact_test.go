package jobs_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltstream/silt/internal/promtest"
	"github.com/siltstream/silt/jobs"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/mem"
	"github.com/siltstream/silt/segment"
)

// flushOf writes and commits one write-path segment holding, per
// partition, batches of the given record counts, as the write pipeline
// does (placeholder base offsets, offsets assigned at commit). It returns
// the batches by partition.
func flushOf(t *testing.T, st metastore.Store, b objectstore.Bucket, key string, topic metastore.Topic, counts map[int32][]int) map[int32][][]byte {
	t.Helper()
	ctx := context.Background()
	w := segment.NewWriter()
	out := map[int32][][]byte{}
	for p, cs := range counts {
		for i, n := range cs {
			var recs []segment.Record
			for r := 0; r < n; r++ {
				recs = append(recs, segment.Record{OffsetDelta: int32(r), TimestampMs: 1_700_000_000_000 + int64(i),
					Key: fmt.Appendf(nil, "%s-%d-%d-%d", key, p, i, r), Value: []byte(strings.Repeat("v", 100))})
			}
			batch := segment.BuildBatch(0, recs)
			h, err := segment.ValidateBatch(batch)
			if err != nil {
				t.Fatal(err)
			}
			w.Append(segment.TopicRef{ID: topic.ID, Name: topic.Name, Partition: p}, batch, h)
			out[p] = append(out[p], batch)
		}
	}
	obj, chunks := w.Finish()
	if err := st.RecordUpload(ctx, key, "a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, key, obj); err != nil {
		t.Fatal(err)
	}
	f := metastore.Flush{SegmentKey: key, AgentID: "a", Size: int64(len(obj))}
	for _, c := range chunks {
		f.Chunks = append(f.Chunks, metastore.Chunk{TopicPartition: metastore.TopicPartition{Topic: c.TopicID, Partition: c.Partition},
			Position: c.Position, Length: c.Length, OffsetCount: c.OffsetCount, BatchCount: c.BatchCount,
			MinTimestamp: c.MinTimestamp, MaxTimestamp: c.MaxTimestamp})
	}
	if _, err := st.CommitFlush(ctx, f); err != nil {
		t.Fatal(err)
	}
	return out
}

// readCompacted checks that the compacted object of row holds, from the
// row's base offset on, batches that carry their real offsets, are zstd,
// valid, and (if want is set) otherwise the batches written; it returns
// the offset after them.
func readCompacted(t *testing.T, b objectstore.Bucket, row metastore.IndexEntry, want [][]byte) int64 {
	t.Helper()
	ctx := context.Background()
	r, err := segment.Open(ctx, b, row.SegmentKey)
	if err != nil {
		t.Fatal(err)
	}
	cs := r.Chunks()
	if len(cs) != 1 || cs[0].BaseOffset != row.BaseOffset || cs[0].Position != row.Position || cs[0].Length != row.Length ||
		cs[0].TopicID != row.Topic || cs[0].Partition != row.Partition {
		t.Fatalf("compacted segment %s chunks %+v, index row %+v", row.SegmentKey, cs, row)
	}
	chunk, err := r.ReadChunk(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	next := row.BaseOffset
	it := segment.NewBatchIter(chunk)
	i := 0
	for it.Next() {
		h := it.Header()
		if _, err := segment.ValidateBatch(it.Batch()); err != nil {
			t.Fatalf("batch %d of %s: %v", i, row.SegmentKey, err)
		}
		if h.BaseOffset != next || h.Compression() != 4 {
			t.Fatalf("batch %d of %s: %+v, want base offset %d, zstd", i, row.SegmentKey, h, next)
		}
		if want != nil {
			wh, _ := segment.ParseBatchHeader(want[i])
			if h.NumRecords != wh.NumRecords || h.FirstTimestamp != wh.FirstTimestamp || h.MaxTimestamp != wh.MaxTimestamp ||
				h.LastOffsetDelta != wh.LastOffsetDelta || h.ProducerID != wh.ProducerID {
				t.Fatalf("batch %d of %s: %+v, want the fields of %+v", i, row.SegmentKey, h, wh)
			}
		}
		next += h.OffsetCount()
		i++
	}
	if it.Err() != nil || next != row.LastOffset+1 {
		t.Fatalf("batches of %s end at %d (%v), row at %d", row.SegmentKey, next-1, it.Err(), row.LastOffset)
	}
	return next
}

// Compaction rewrites each partition's flush rows into compacted
// segments of at most SegmentBytes of input, one index row each, with the
// same offsets; the flush segments are then collected; compacted rows are
// not compacted again.
func TestCompactionRewritesFlushSegments(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "c", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32][][]byte{}
	for i := 0; i < 6; i++ {
		for p, bs := range flushOf(t, st, b, fmt.Sprintf("segments/f%d.seg", i), topic, map[int32][]int{0: {3, 2}, 1: {1}}) {
			want[p] = append(want[p], bs...)
		}
	}
	rows0 := 0
	for _, p := range []int32{0, 1} {
		rows0 += len(mustIndex(t, st, metastore.TopicPartition{Topic: topic.ID, Partition: p}))
	}
	m := jobs.NewMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	var swaps []metastore.Replacement
	c := &jobs.Compactor{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1 << 20, Metrics: m,
		OnSwap: func(r metastore.Replacement) { swaps = append(swaps, r) }}
	// Partition 0's rows hold about 650 bytes each: three per segment.
	tp0 := metastore.TopicPartition{Topic: topic.ID}
	c.SegmentBytes = 3*mustIndex(t, st, tp0)[0].Length + 10
	res, err := c.CompactOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != 3 || res.Refused != 0 || len(swaps) != 3 {
		t.Fatalf("CompactOnce = %+v; want 2 segments for partition 0 and 1 for partition 1", res)
	}
	for _, p := range []int32{0, 1} {
		tp := metastore.TopicPartition{Topic: topic.ID, Partition: p}
		rows := mustIndex(t, st, tp)
		wantRows := map[int32]int{0: 2, 1: 1}[p]
		if len(rows) != wantRows {
			t.Fatalf("partition %d: %d rows after compaction, want %d", p, len(rows), wantRows)
		}
		next, i := int64(0), 0
		for _, r := range rows {
			if !strings.HasPrefix(r.SegmentKey, jobs.CompactedPrefix) || r.BaseOffset != next {
				t.Fatalf("partition %d: row %+v, want a compacted row from %d", p, r, next)
			}
			n := int(r.BatchCount)
			next = readCompacted(t, b, r, want[p][i:i+n])
			i += n
		}
		if i != len(want[p]) {
			t.Fatalf("partition %d: %d batches compacted, %d written", p, i, len(want[p]))
		}
	}
	got := promtest.Gather(t, reg)
	if got["silt_compaction_read_bytes_total"] <= 0 || got["silt_compaction_written_bytes_total"] <= 0 ||
		got["silt_compaction_segments_total"] != 3 || got["silt_compaction_awaiting_bytes"] != float64(res.ReadBytes) {
		t.Fatalf("metrics %v, pass %+v", got, res)
	}

	// Nothing left to compact: the compacted rows stay as they are.
	if res, err := c.CompactOnce(ctx); err != nil || res.Segments != 0 || res.ReadBytes != 0 {
		t.Fatalf("second pass = %+v, %v; want nothing done", res, err)
	}
	if promtest.Gather(t, reg)["silt_compaction_awaiting_bytes"] != 0 {
		t.Fatal("bytes still awaiting compaction after everything was compacted")
	}
	gc := &jobs.GC{Store: st, Bucket: b, Log: discard(), OrphanMinAge: time.Hour, Grace: 0}
	if cl, err := gc.CollectOnce(ctx); err != nil || cl.Unreferenced != 6 || cl.Deleted != 6 {
		t.Fatalf("collect = %+v, %v; want the 6 flush segments doomed and deleted", cl, err)
	}
	keys := bucketKeys(t, b)
	if len(keys) != 3 {
		t.Fatalf("bucket holds %v, want the 3 compacted segments", keys)
	}

	// New flushes after compacted rows are compacted on their own.
	flushOf(t, st, b, "segments/late.seg", topic, map[int32][]int{0: {4}})
	if res, err := c.CompactOnce(ctx); err != nil || res.Segments != 1 {
		t.Fatalf("pass after a new flush = %+v, %v", res, err)
	}
	if rows := mustIndex(t, st, tp0); len(rows) != 3 || rows[2].BaseOffset != 30 || rows[2].LastOffset != 33 {
		t.Fatalf("rows %+v", rows)
	}
}

// A partition written slowly gets a small compacted segment every pass;
// small compacted segments are merged, size-tiered, so its rows stay few:
// with one flush per pass, four small rows become one, four of those one
// again, and so on. Merged segments hold the same batches with the same
// offsets, and the segments merged away are collected.
func TestCompactionMergesSmallCompactedSegments(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "m", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	tp := metastore.TopicPartition{Topic: topic.ID}
	c := &jobs.Compactor{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1 << 20}
	var want [][]byte
	merged, most := 0, 0
	const passes = 16
	for i := 1; i <= passes; i++ {
		want = append(want, flushOf(t, st, b, fmt.Sprintf("segments/m%02d.seg", i), topic, map[int32][]int{0: {3}})[0]...)
		res, err := c.CompactOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		merged += res.Merged
		rows := mustIndex(t, st, tp)
		most = max(most, len(rows))
		if i%4 != 0 && res.Merged != 0 {
			t.Fatalf("pass %d merged %d segments; merges come every fourth pass here", i, res.Merged)
		}
		if i%4 == 0 && res.Merged == 0 {
			t.Fatalf("pass %d: rows %+v, nothing merged", i, rows)
		}
		// Every offset written is there once, in order, as written.
		next, k := int64(0), 0
		for _, r := range rows {
			if !strings.HasPrefix(r.SegmentKey, jobs.CompactedPrefix) || r.BaseOffset != next {
				t.Fatalf("pass %d: row %+v, want a compacted row from %d", i, r, next)
			}
			n := int(r.BatchCount)
			next = readCompacted(t, b, r, want[k:k+n])
			k += n
		}
		if k != len(want) {
			t.Fatalf("pass %d: %d batches in the index, %d written", i, k, len(want))
		}
	}
	// One flush a pass: 16 rows without merging. Merged, a base-4 counter:
	// at most 3 rows of each size after a pass; the 16th pass merges three
	// rows of four flushes and four of one at once.
	if rows := mustIndex(t, st, tp); len(rows) != 1 || most > 6 || merged != 4 {
		t.Fatalf("after %d passes: %d rows (at most %d on the way), %d merges; want 1 row, at most 6, 4 merges", passes, len(rows), most, merged)
	}
	keys := collectAndList(t, st, b)
	if rows := mustIndex(t, st, tp); len(keys) != 1 || keys[0] != rows[0].SegmentKey {
		t.Fatalf("bucket holds %v, want only %s", keys, rows[0].SegmentKey)
	}
}

// Small compacted segments retention will expire within ExpiryHorizon are
// not merged, as level 0 rows are not compacted; merging leaves a compacted
// topic's segments to keyed compaction.
func TestCompactionMergePassesOverDataAboutToExpire(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "e", Partitions: 1, Config: map[string]string{"cleanup.policy": "compact"}})
	if err != nil {
		t.Fatal(err)
	}
	tp := metastore.TopicPartition{Topic: topic.ID}
	for i := 0; i < 4; i++ {
		flushOf(t, st, b, fmt.Sprintf("segments/e%d.seg", i), topic, map[int32][]int{0: {3}})
	}
	// Each flush row is a run of its own (two would pass SegmentBytes);
	// the four compacted rows, zstd, would merge, but the topic is
	// compacted by key.
	c := &jobs.Compactor{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 2*mustIndex(t, st, tp)[0].Length - 10}
	if res, err := c.CompactOnce(ctx); err != nil || res.Segments != 4 || res.Merged != 0 {
		t.Fatalf("first pass = %+v, %v; want 4 segments, none merged", res, err)
	}
	// flushOf's records are stamped 1_700_000_000_000 (+ a few ms): kept
	// for 30 s more, they expire within the horizon.
	age := time.Now().UnixMilli() - 1_700_000_000_000
	if err := st.SetTopicConfig(ctx, "e", map[string]string{"retention.ms": fmt.Sprint(age + 30_000)}, topic.Config); err != nil {
		t.Fatal(err)
	}
	c.ExpiryHorizon = time.Minute
	if res, err := c.CompactOnce(ctx); err != nil || res.Segments != 0 || len(mustIndex(t, st, tp)) != 4 {
		t.Fatalf("pass with the data expiring = %+v, %v; want nothing merged", res, err)
	}
	c.ExpiryHorizon = 0
	if res, err := c.CompactOnce(ctx); err != nil || res.Merged != 1 || len(mustIndex(t, st, tp)) != 1 {
		t.Fatalf("pass without the horizon = %+v, %v; want the four merged", res, err)
	}
}

// Two compactors of the same partitions at once (two agents whose views of
// who leads differ): every swap either wins or changes nothing, the losers'
// uploads are forgotten and collected, and the index covers every offset
// once.
func TestCompactionTwoCompactorsRace(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "r", Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		flushOf(t, st, b, fmt.Sprintf("segments/r%d.seg", i), topic, map[int32][]int{0: {2}, 1: {3}, 2: {1, 1}})
	}
	var wg sync.WaitGroup
	res := make([]jobs.Compaction, 2)
	errs := make([]error, 2)
	for i := range res {
		c := &jobs.Compactor{AgentID: fmt.Sprintf("agent-%d", i), Store: st, Bucket: b, Log: discard(), SegmentBytes: 1 << 20}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = c.CompactOnce(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("compactor %d: %v", i, err)
		}
	}
	if res[0].Segments+res[1].Segments != 3 {
		t.Fatalf("passes %+v; want one swap per partition in all", res)
	}
	for p := int32(0); p < 3; p++ {
		rows := mustIndex(t, st, metastore.TopicPartition{Topic: topic.ID, Partition: p})
		if len(rows) != 1 || rows[0].BaseOffset != 0 || !strings.HasPrefix(rows[0].SegmentKey, jobs.CompactedPrefix) {
			t.Fatalf("partition %d rows %+v; want one compacted row from 0", p, rows)
		}
		readCompacted(t, b, rows[0], nil)
	}
	keys := collectAndList(t, st, b)
	if len(keys) != 3 {
		t.Fatalf("bucket holds %v after collection, want only the 3 swapped-in segments", keys)
	}
}

// collectAndList runs garbage collection with no grace and returns the
// keys left in the bucket.
func collectAndList(t *testing.T, st metastore.Store, b objectstore.Bucket) []string {
	t.Helper()
	gc := &jobs.GC{Store: st, Bucket: b, Log: discard(), OrphanMinAge: time.Hour, Grace: 0}
	if _, err := gc.CollectOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	return bucketKeys(t, b)
}

// bucketKeys lists the bucket's keys.
func bucketKeys(t *testing.T, b objectstore.Bucket) []string {
	t.Helper()
	var keys []string
	if err := b.List(context.Background(), "", func(a objectstore.Attrs) error { keys = append(keys, a.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	return keys
}

func mustIndex(t *testing.T, st metastore.Store, tp metastore.TopicPartition) []metastore.IndexEntry {
	t.Helper()
	rows, err := st.Index(context.Background(), tp, 0, 1<<62, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// Data retention will expire within ExpiryHorizon is not rewritten: by
// retention.ms, a run whose newest record expires within the horizon; by
// retention.bytes, one above which the partition already holds
// retention.bytes. The rest compacts as ever.
func TestCompactionPassesOverDataAboutToExpire(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	// flushOf's records are stamped 1_700_000_000_000 (+ a few ms).
	age := time.Now().UnixMilli() - 1_700_000_000_000
	cases := []struct {
		config   map[string]string
		wantLeft int // rows left level 0, of three
	}{
		{map[string]string{"retention.ms": fmt.Sprint(age + 30_000)}, 3},         // expires in 30 s
		{map[string]string{"retention.ms": fmt.Sprint(age + 3_600_000)}, 0},      // in an hour
		{map[string]string{"retention.ms": "-1", "retention.bytes": "1"}, 2},     // all but the newest row are over
		{map[string]string{"retention.ms": "-1", "retention.bytes": "-1"}, 0},    // kept forever
		{map[string]string{"cleanup.policy": "compact", "retention.ms": "1"}, 0}, // not expired at all
	}
	topics := make([]metastore.Topic, len(cases))
	for i, tc := range cases {
		topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: fmt.Sprintf("t%d", i), Partitions: 1, Config: tc.config})
		if err != nil {
			t.Fatal(err)
		}
		topics[i] = topic
		for j := 0; j < 3; j++ {
			flushOf(t, st, b, fmt.Sprintf("segments/t%d-%d.seg", i, j), topic, map[int32][]int{0: {2}})
		}
	}
	// SegmentBytes 1: each row is a run of its own.
	c := &jobs.Compactor{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1, ExpiryHorizon: time.Minute}
	for pass := 0; pass < 2; pass++ { // the second pass leaves what the first did
		if _, err := c.CompactOnce(ctx); err != nil {
			t.Fatal(err)
		}
		for i, tc := range cases {
			left := 0
			for _, r := range mustIndex(t, st, metastore.TopicPartition{Topic: topics[i].ID}) {
				if !strings.HasPrefix(r.SegmentKey, jobs.CompactedPrefix) {
					left++
				}
			}
			if left != tc.wantLeft {
				t.Errorf("pass %d, config %v: %d rows left uncompacted, want %d", pass, tc.config, left, tc.wantLeft)
			}
		}
	}
}

// By retention.bytes, a run the partition's growth will push out within
// ExpiryHorizon is passed over even when little is above it yet: the rate
// is the run's bytes and those above it over the time since its oldest
// record.
func TestCompactionPassesOverDataBytesRetentionExpiresSoon(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	now := time.Now()
	for i, tc := range []struct {
		age      time.Duration // of the records
		wantLeft int
	}{
		{time.Second, 3},    // three rows a second: ten rows' worth fills in seconds
		{24 * time.Hour, 0}, // three rows a day: not soon
	} {
		topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: fmt.Sprintf("t%d", i), Partitions: 1,
			Config: map[string]string{"retention.ms": "-1", "retention.bytes": "100000"}})
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 3; j++ {
			keyedFlush(t, st, b, fmt.Sprintf("segments/t%d-%d.seg", i, j), topic, []segment.Record{{
				TimestampMs: now.Add(-tc.age).UnixMilli(), Key: []byte("k"), Value: make([]byte, 3000)}})
		}
		c := &jobs.Compactor{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1 << 20, ExpiryHorizon: time.Minute}
		if _, err := c.CompactOnce(ctx); err != nil {
			t.Fatal(err)
		}
		left := 0
		for _, r := range mustIndex(t, st, metastore.TopicPartition{Topic: topic.ID}) {
			if !strings.HasPrefix(r.SegmentKey, jobs.CompactedPrefix) {
				left++
			}
		}
		if left != tc.wantLeft {
			t.Errorf("records %s old: %d rows left uncompacted, want %d", tc.age, left, tc.wantLeft)
		}
	}
}
