package jobs_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/siltstream/silt/jobs"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/mem"
	"github.com/siltstream/silt/segment"
)

// keyedFlush commits one write-path segment holding one batch of recs on
// partition 0.
func keyedFlush(t *testing.T, st metastore.Store, b objectstore.Bucket, key string, topic metastore.Topic, recs []segment.Record) {
	t.Helper()
	ctx := context.Background()
	w := segment.NewWriter()
	batch := segment.BuildBatch(0, recs)
	h, err := segment.ValidateBatch(batch)
	if err != nil {
		t.Fatal(err)
	}
	w.Append(segment.TopicRef{ID: topic.ID, Name: topic.Name}, batch, h)
	obj, chunks := w.Finish()
	if err := st.RecordUpload(ctx, key, "a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, key, obj); err != nil {
		t.Fatal(err)
	}
	c := chunks[0]
	if _, err := st.CommitFlush(ctx, metastore.Flush{SegmentKey: key, AgentID: "a", Size: int64(len(obj)), Chunks: []metastore.Chunk{{
		TopicPartition: metastore.TopicPartition{Topic: topic.ID}, Position: c.Position, Length: c.Length,
		OffsetCount: c.OffsetCount, BatchCount: c.BatchCount, MinTimestamp: c.MinTimestamp, MaxTimestamp: c.MaxTimestamp,
	}}}); err != nil {
		t.Fatal(err)
	}
}

// logRecord is one record of a partition as read from the bucket.
type logRecord struct {
	offset    int64
	key       string
	value     string
	tombstone bool
}

// eachBatch calls fn with every batch of partition tp's rows and its
// offset, taking offsets from the batches of compacted and cleaned
// segments; it fails the test if a batch lies outside its row.
func eachBatch(t *testing.T, st metastore.Store, b objectstore.Bucket, tp metastore.TopicPartition, fn func(batch []byte, h segment.BatchHeader, base int64)) {
	t.Helper()
	for _, r := range mustIndex(t, st, tp) {
		chunk, err := b.Get(context.Background(), r.SegmentKey, r.Position, r.Length)
		if err != nil {
			t.Fatal(err)
		}
		base := r.BaseOffset
		for len(chunk) > 0 {
			batch, rest, h, err := segment.NextBatch(chunk)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(r.SegmentKey, jobs.CompactedPrefix) || strings.HasPrefix(r.SegmentKey, jobs.CleanedPrefix) {
				base = h.BaseOffset
			}
			if base < r.BaseOffset || base+h.OffsetCount()-1 > r.LastOffset {
				t.Fatalf("batch at %d+%d in row %+v", base, h.OffsetCount(), r)
			}
			fn(batch, h, base)
			base += h.OffsetCount()
			chunk = rest
		}
	}
}

// readLog reads partition tp's records from its index rows; it fails the
// test if offsets do not strictly increase.
func readLog(t *testing.T, st metastore.Store, b objectstore.Bucket, tp metastore.TopicPartition) []logRecord {
	t.Helper()
	var out []logRecord
	last := int64(-1)
	eachBatch(t, st, b, tp, func(batch []byte, _ segment.BatchHeader, base int64) {
		if err := segment.WalkRecords(batch, 1<<20, func(rec segment.CleanRecord) error {
			off := base + int64(rec.OffsetDelta)
			if off <= last {
				t.Fatalf("offset %d after %d", off, last)
			}
			last = off
			out = append(out, logRecord{off, string(rec.Key), string(rec.Value), rec.Tombstone})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	return out
}

// latest is the key → value map a consumer rebuilds from recs: tombstones
// delete.
func latest(recs []logRecord) map[string]string {
	m := map[string]string{}
	for _, r := range recs {
		if r.tombstone {
			delete(m, r.key)
		} else {
			m[r.key] = r.value
		}
	}
	return m
}

// keyedLog writes rounds flushes, each updating every one of keys keys,
// deleting (tombstones) every tenth key in the last round, and compacts
// them into level 1 rows of one flush each.
func keyedLog(t *testing.T, st metastore.Store, b objectstore.Bucket, topic metastore.Topic, keys, rounds int, ts int64) {
	t.Helper()
	c := &jobs.Compactor{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1}
	for round := 0; round < rounds; round++ {
		var recs []segment.Record
		for k := 0; k < keys; k++ {
			r := segment.Record{OffsetDelta: int32(k), TimestampMs: ts, Key: fmt.Appendf(nil, "key-%04d", k), Value: fmt.Appendf(nil, "v%d-%d", round, k)}
			if round == rounds-1 && k%10 == 0 {
				r.Value = nil
			}
			recs = append(recs, r)
		}
		keyedFlush(t, st, b, fmt.Sprintf("segments/%s-%d.seg", topic.Name, round), topic, recs)
		if _, err := c.CompactOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// The cleaner keeps each key's latest record at its offset, keeps
// tombstones for delete.retention.ms after the pass that first cleaned
// them and then removes them, leaves a topic without compact alone, and
// shrinks the partition.
func TestCleanerKeepsLatestPerKey(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "k", Partitions: 1,
		Config: map[string]string{"cleanup.policy": "compact", "delete.retention.ms": "60000"}})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "plain", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	const ts = 1_700_000_000_000
	keyedLog(t, st, b, topic, 200, 5, ts)
	keyedLog(t, st, b, plain, 20, 2, ts)
	tp := metastore.TopicPartition{Topic: topic.ID}
	before := readLog(t, st, b, tp)
	want := latest(before)
	bytesOf := func() (n int64) {
		for _, r := range mustIndex(t, st, tp) {
			n += r.Length
		}
		return n
	}
	sizeBefore := bytesOf()

	now := time.UnixMilli(ts + 1000)
	cl := &jobs.Cleaner{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1 << 20, DedupeBufferBytes: 1 << 20,
		Now: func() time.Time { return now }}
	res, err := cl.CleanOnce(ctx)
	if err != nil || res.Partitions != 1 || res.Segments != 1 || res.Partial != 0 {
		t.Fatalf("CleanOnce = %+v, %v; want the keyed partition cleaned in one segment", res, err)
	}
	after := readLog(t, st, b, tp)
	if got := latest(after); !maps.Equal(got, want) {
		t.Fatalf("after cleaning the log gives %d keys, want %d", len(got), len(want))
	}
	// Each key once: its latest record, at the offset it was written at.
	lastOf := map[string]int64{}
	for _, r := range before {
		lastOf[r.key] = r.offset
	}
	if len(after) != 200 {
		t.Fatalf("%d records after cleaning, want 200 (tombstones kept)", len(after))
	}
	for _, r := range after {
		if lastOf[r.key] != r.offset {
			t.Fatalf("record %+v kept, the key's latest is at %d", r, lastOf[r.key])
		}
	}
	if rows := mustIndex(t, st, tp); len(rows) != 1 || !strings.HasPrefix(rows[0].SegmentKey, jobs.CleanedPrefix) || rows[0].BaseOffset != 0 || rows[0].LastOffset != 999 {
		t.Fatalf("rows after cleaning %+v; want one cleaned row over 0-999", rows)
	}
	if sizeAfter := bytesOf(); sizeAfter*3 > sizeBefore {
		t.Fatalf("partition holds %d bytes after cleaning, %d before; want under a third", sizeAfter, sizeBefore)
	}
	if got := readLog(t, st, b, metastore.TopicPartition{Topic: plain.ID}); len(got) != 40 {
		t.Fatalf("a delete-policy topic was cleaned: %d records", len(got))
	}

	// Nothing dirty and the horizon ahead: nothing to do.
	if res, err := cl.CleanOnce(ctx); err != nil || res.Segments != 0 || res.ReadBytes != 0 {
		t.Fatalf("second pass = %+v, %v; want nothing done", res, err)
	}
	// Past delete.retention.ms after the first cleaning: tombstones go.
	now = now.Add(60*time.Second + time.Millisecond)
	if res, err := cl.CleanOnce(ctx); err != nil || res.Segments != 1 || res.Removed != 20 {
		t.Fatalf("pass after the delete horizon = %+v, %v; want the 20 tombstones removed", res, err)
	}
	after = readLog(t, st, b, tp)
	if len(after) != 180 || !maps.Equal(latest(after), want) {
		t.Fatalf("%d records after the delete horizon; want the 180 live keys", len(after))
	}
	for _, r := range after {
		if r.tombstone {
			t.Fatalf("tombstone %+v left after its delete horizon", r)
		}
	}
	// The compactor leaves cleaned rows alone.
	c := &jobs.Compactor{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1 << 20}
	if res, err := c.CompactOnce(ctx); err != nil || res.Segments != 0 {
		t.Fatalf("compaction after cleaning = %+v, %v", res, err)
	}
}

// With a map that holds fewer keys than the dirty part, a pass cleans up
// to where the map filled and later passes (of cleaners that remember
// nothing) go on, until the log is as cleaning it at once would leave it.
func TestCleanerBoundedMapConverges(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "k", Partitions: 1,
		Config: map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	const ts = 1_700_000_000_000
	// 6 rows of 100 keys: the map holds 160 keys (200 slots), so one row
	// at a time is mapped.
	keyedLog(t, st, b, topic, 100, 6, ts)
	tp := metastore.TopicPartition{Topic: topic.ID}
	want := latest(readLog(t, st, b, tp))
	passes := 0
	for {
		// A new cleaner each pass, as after an agent restart: where the
		// last pass stopped is in the index (the cleaned rows), not in
		// memory.
		cl := &jobs.Cleaner{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1 << 20, DedupeBufferBytes: 200 * 24,
			Now: func() time.Time { return time.UnixMilli(ts + 1000) }}
		res, err := cl.CleanOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Partitions == 0 {
			break
		}
		passes++
		if res.Partial != map[bool]int{true: 1, false: 0}[passes < 6] {
			t.Fatalf("pass %d = %+v; want it partial until the last", passes, res)
		}
		if passes > 10 {
			t.Fatal("cleaning does not converge")
		}
		if got := latest(readLog(t, st, b, tp)); !maps.Equal(got, want) {
			t.Fatalf("after pass %d the log gives %d keys, want %d", passes, len(got), len(want))
		}
	}
	if passes != 6 {
		t.Fatalf("%d passes; want one per row of 100 keys with a map of 160", passes)
	}
	if got := readLog(t, st, b, tp); len(got) != 100 {
		t.Fatalf("%d records after cleaning converged, want 100", len(got))
	}
}

// racingStore runs race once, just before the first ReplaceIndex: what
// changes the rows between a cleaner's read and its swap.
type racingStore struct {
	jobs.CleanerStore
	race func()
}

func (s *racingStore) ReplaceIndex(ctx context.Context, r metastore.Replacement) (bool, error) {
	if s.race != nil {
		race := s.race
		s.race = nil
		race()
	}
	return s.CleanerStore.ReplaceIndex(ctx, r)
}

// A swap whose rows changed since the cleaner read them (DeleteRecords,
// retention, a second cleaner) changes nothing; the log stays right and
// a later pass cleans what is left.
func TestCleanerSwapLosesRaces(t *testing.T) {
	const ts = 1_700_000_000_000
	now := func() time.Time { return time.UnixMilli(ts + 1000) }
	for _, tc := range []struct {
		name string
		race func(t *testing.T, st metastore.Store, b objectstore.Bucket, tp metastore.TopicPartition)
	}{
		{"delete-records", func(t *testing.T, st metastore.Store, b objectstore.Bucket, tp metastore.TopicPartition) {
			if _, err := st.AdvanceLogStart(context.Background(), tp, 200); err != nil {
				t.Fatal(err)
			}
		}},
		{"second-cleaner", func(t *testing.T, st metastore.Store, b objectstore.Bucket, tp metastore.TopicPartition) {
			other := &jobs.Cleaner{AgentID: "b", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1 << 20, DedupeBufferBytes: 1 << 20, Now: now}
			if res, err := other.CleanOnce(context.Background()); err != nil || res.Segments != 1 {
				t.Fatalf("second cleaner = %+v, %v", res, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, b := openStore(t), mem.New()
			topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "k", Partitions: 1, Config: map[string]string{"cleanup.policy": "compact"}})
			if err != nil {
				t.Fatal(err)
			}
			keyedLog(t, st, b, topic, 100, 5, ts)
			tp := metastore.TopicPartition{Topic: topic.ID}
			before := readLog(t, st, b, tp)
			rs := &racingStore{CleanerStore: st}
			rs.race = func() { tc.race(t, st, b, tp) }
			cl := &jobs.Cleaner{AgentID: "a", Store: rs, Bucket: b, Log: discard(), SegmentBytes: 1 << 20, DedupeBufferBytes: 1 << 20, Now: now}
			res, err := cl.CleanOnce(ctx)
			if err != nil || res.Refused != 1 || res.Segments != 0 {
				t.Fatalf("CleanOnce racing %s = %+v, %v; want its swap refused", tc.name, res, err)
			}
			// What is readable from the log start gives the same map as the
			// records written from there.
			ps, err := st.Partitions(ctx, topic.ID)
			if err != nil {
				t.Fatal(err)
			}
			var from []logRecord
			for _, r := range before {
				if r.offset >= ps[0].LogStartOffset {
					from = append(from, r)
				}
			}
			want := latest(from)
			if got := latest(readLog(t, st, b, tp)); !maps.Equal(got, want) {
				t.Fatalf("after the race the log gives %d keys, want %d", len(got), len(want))
			}
			if _, err := cl.CleanOnce(ctx); err != nil {
				t.Fatal(err)
			}
			after := readLog(t, st, b, tp)
			if got := latest(after); !maps.Equal(got, want) || len(after) != 100 {
				t.Fatalf("after a later pass: %d records, %d keys; want 100 records and the map", len(after), len(got))
			}
		})
	}
}

// min.compaction.lag.ms keeps rows with newer records out of a pass;
// min.cleanable.dirty.ratio holds a pass back until enough is dirty,
// unless max.compaction.lag.ms has passed for the oldest dirty record.
func TestCleanerLagAndDirtyRatio(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "k", Partitions: 1, Config: map[string]string{
		"cleanup.policy": "compact", "min.compaction.lag.ms": "1000", "max.compaction.lag.ms": "60000"}})
	if err != nil {
		t.Fatal(err)
	}
	const ts = 1_700_000_000_000
	keyedLog(t, st, b, topic, 100, 5, ts)
	var now time.Time
	cl := &jobs.Cleaner{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1 << 20, DedupeBufferBytes: 1 << 20,
		Now: func() time.Time { return now }}
	now = time.UnixMilli(ts + 999)
	if res, err := cl.CleanOnce(ctx); err != nil || res.Partitions != 0 {
		t.Fatalf("pass within min.compaction.lag.ms = %+v, %v; want nothing cleaned", res, err)
	}
	now = time.UnixMilli(ts + 1000)
	if res, err := cl.CleanOnce(ctx); err != nil || res.Partitions != 1 {
		t.Fatalf("pass after min.compaction.lag.ms = %+v, %v; want the partition cleaned", res, err)
	}
	// A small update: far below half the partition's bytes.
	c := &jobs.Compactor{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1}
	keyedFlush(t, st, b, "segments/small.seg", topic, []segment.Record{{TimestampMs: ts + 2000, Key: []byte("key-0001"), Value: []byte("new")}})
	if _, err := c.CompactOnce(ctx); err != nil {
		t.Fatal(err)
	}
	now = time.UnixMilli(ts + 10_000)
	if res, err := cl.CleanOnce(ctx); err != nil || res.Partitions != 0 {
		t.Fatalf("pass below min.cleanable.dirty.ratio = %+v, %v; want nothing cleaned", res, err)
	}
	now = time.UnixMilli(ts + 2000 + 60_001)
	if res, err := cl.CleanOnce(ctx); err != nil || res.Partitions != 1 || res.Removed != 1 {
		t.Fatalf("pass after max.compaction.lag.ms = %+v, %v; want the old record of key-0001 removed", res, err)
	}
	if got := latest(readLog(t, st, b, metastore.TopicPartition{Topic: topic.ID})); got["key-0001"] != "new" || len(got) != 90 {
		t.Fatalf("map after cleaning: %d keys, key-0001=%q", len(got), got["key-0001"])
	}
}

// eagerTopic creates a one-partition compacted topic cleaned whenever
// anything is dirty, with a delete horizon a second after a pass.
func eagerTopic(t *testing.T, st metastore.Store) metastore.Topic {
	t.Helper()
	topic, err := st.CreateTopic(context.Background(), metastore.TopicSpec{Name: "k", Partitions: 1,
		Config: map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0", "delete.retention.ms": "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	return topic
}

// A cleaned segment names the delete horizon of the tombstones it still
// holds, so a partition whose tombstones were all superseded is not
// cleaned again for a horizon that no longer matters.
func TestCleanerForgetsSupersededTombstones(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	topic := eagerTopic(t, st)
	const ts = 1_700_000_000_000
	keyedLog(t, st, b, topic, 100, 2, ts) // the second round deletes every tenth key
	now := time.UnixMilli(ts)
	cl := &jobs.Cleaner{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1 << 20, DedupeBufferBytes: 1 << 20,
		Now: func() time.Time { return now }}
	if res, err := cl.CleanOnce(ctx); err != nil || res.Segments != 1 {
		t.Fatalf("first pass = %+v, %v", res, err)
	}
	// The deleted keys written again: the tombstones are superseded, and
	// their batch keeps its other records and its delete horizon.
	var recs []segment.Record
	for k := 0; k < 100; k += 10 {
		recs = append(recs, segment.Record{OffsetDelta: int32(k / 10), TimestampMs: ts, Key: fmt.Appendf(nil, "key-%04d", k), Value: []byte("again")})
	}
	keyedFlush(t, st, b, "segments/again.seg", topic, recs)
	if _, err := (&jobs.Compactor{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1}).CompactOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := cl.CleanOnce(ctx); err != nil || res.Segments != 1 || res.Removed != 10 {
		t.Fatalf("second pass = %+v, %v; want the 10 tombstones removed", res, err)
	}
	rows := mustIndex(t, st, metastore.TopicPartition{Topic: topic.ID})
	if len(rows) != 1 || !strings.Contains(rows[0].SegmentKey, "/00000000000000000000-0-a-") {
		t.Fatalf("rows %+v; want one cleaned row naming no delete horizon", rows)
	}
	now = now.Add(time.Hour)
	if res, err := cl.CleanOnce(ctx); err != nil || res.Partitions != 0 || res.ReadBytes != 0 {
		t.Fatalf("pass after the old horizon = %+v, %v; want nothing read", res, err)
	}
}

// For a compacted topic the Compactor writes rows of at most as many
// offsets as the Cleaner's map holds keys, so a pass can always map a
// whole row; other topics' rows are bounded by bytes only.
func TestCompactorBoundsKeyedRowsByMap(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	keyed, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "k", Partitions: 1, Config: map[string]string{"cleanup.policy": "compact"}})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "p", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		for _, topic := range []metastore.Topic{keyed, plain} {
			var recs []segment.Record
			for k := 0; k < 100; k++ {
				recs = append(recs, segment.Record{OffsetDelta: int32(k), TimestampMs: 1000, Key: fmt.Appendf(nil, "k%d", k), Value: []byte("v")})
			}
			keyedFlush(t, st, b, fmt.Sprintf("segments/%s-%d.seg", topic.Name, i), topic, recs)
		}
	}
	const mapBytes = 320 * 24 // 320 slots: 256 keys
	if n := jobs.DedupeMapKeys(mapBytes); n != 256 {
		t.Fatalf("DedupeMapKeys = %d, want 256", n)
	}
	c := &jobs.Compactor{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1 << 20, KeyedMaxOffsets: jobs.DedupeMapKeys(mapBytes)}
	if _, err := c.CompactOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		topic metastore.Topic
		rows  int
	}{{keyed, 3}, {plain, 1}} {
		rows := mustIndex(t, st, metastore.TopicPartition{Topic: tc.topic.ID})
		if len(rows) != tc.rows {
			t.Fatalf("topic %s: %d compacted rows, want %d", tc.topic.Name, len(rows), tc.rows)
		}
	}
	cl := &jobs.Cleaner{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1 << 20, DedupeBufferBytes: mapBytes,
		Now: func() time.Time { return time.UnixMilli(2000) }}
	if res, err := cl.CleanOnce(ctx); err != nil || res.Partitions != 1 || res.Partial != 1 {
		t.Fatalf("CleanOnce = %+v, %v; want the first row mapped whole", res, err)
	}
}

// txnBatch is a transactional data batch of producer pid.
func txnBatch(pid int64, recs []segment.Record) []byte {
	b := segment.BuildBatch(0, recs)
	binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|0x10) // transactional
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], 0)
	binary.BigEndian.PutUint32(b[53:], 0)
	binary.BigEndian.PutUint32(b[17:], segment.Checksum(b[21:]))
	return b
}

// markersIn lists the markers of tp's rows by offset: true for a commit.
func markersIn(t *testing.T, st metastore.Store, b objectstore.Bucket, tp metastore.TopicPartition) map[int64]bool {
	t.Helper()
	out := map[int64]bool{}
	eachBatch(t, st, b, tp, func(batch []byte, h segment.BatchHeader, base int64) {
		if h.IsControl() {
			commit, err := segment.MarkerCommits(batch)
			if err != nil {
				t.Fatal(err)
			}
			out[base] = commit
		}
	})
	return out
}

// Kafka's cleaner removes a COMMIT marker once none of its transaction's
// records is left and a delete horizon, set by the pass that first found
// it so, has passed; markers of transactions with records left, and ABORT
// markers, stay.
func TestCleanerRemovesEmptiedCommitMarkers(t *testing.T) {
	ctx := context.Background()
	st, b := openStore(t), mem.New()
	topic := eagerTopic(t, st)
	tp := metastore.TopicPartition{Topic: topic.ID}
	const ts = 1_700_000_000_000
	rec := func(k, v string) []segment.Record {
		return []segment.Record{{TimestampMs: ts, Key: []byte(k), Value: []byte(v)}}
	}
	// Offsets: 0 a=1 (pid 7), 1 COMMIT, 2 a=2 (pid 7), 3 COMMIT, 4 b=1
	// (pid 8), 5 COMMIT, 6 ABORT (pid 9, nothing written).
	batches := [][]byte{
		txnBatch(7, rec("a", "1")), segment.ControlBatch(7, 0, true, 0, ts),
		txnBatch(7, rec("a", "2")), segment.ControlBatch(7, 0, true, 0, ts),
		txnBatch(8, rec("b", "1")), segment.ControlBatch(8, 0, true, 0, ts),
		segment.ControlBatch(9, 0, false, 0, ts),
	}
	w := segment.NewWriter()
	for _, batch := range batches {
		h, err := segment.ParseBatchHeader(batch)
		if err != nil {
			t.Fatal(err)
		}
		w.Append(segment.TopicRef{ID: topic.ID, Name: topic.Name}, batch, h)
	}
	obj, chunks := w.Finish()
	if err := st.RecordUpload(ctx, "segments/txn.seg", "a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "segments/txn.seg", obj); err != nil {
		t.Fatal(err)
	}
	c := chunks[0]
	if _, err := st.CommitFlush(ctx, metastore.Flush{SegmentKey: "segments/txn.seg", AgentID: "a", Size: int64(len(obj)), Chunks: []metastore.Chunk{{
		TopicPartition: tp, Position: c.Position, Length: c.Length,
		OffsetCount: c.OffsetCount, BatchCount: c.BatchCount, MinTimestamp: c.MinTimestamp, MaxTimestamp: c.MaxTimestamp,
	}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := (&jobs.Compactor{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1 << 20}).CompactOnce(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(ts)
	cl := &jobs.Cleaner{AgentID: "a", Store: st, Bucket: b, Log: discard(), SegmentBytes: 1 << 20, DedupeBufferBytes: 1 << 20,
		Now: func() time.Time { return now }}
	// First pass: a=1 goes; its COMMIT is dated, not removed yet.
	if res, err := cl.CleanOnce(ctx); err != nil || res.Segments != 1 || res.Removed != 1 || res.Markers != 0 {
		t.Fatalf("first pass = %+v, %v; want a=1 removed and no marker", res, err)
	}
	want := map[int64]bool{1: true, 3: true, 5: true, 6: false}
	if got := markersIn(t, st, b, tp); !maps.Equal(got, want) {
		t.Fatalf("markers after the first pass %v, want %v", got, want)
	}
	// Past the horizon: the COMMIT of the emptied transaction goes.
	now = now.Add(2 * time.Second)
	if res, err := cl.CleanOnce(ctx); err != nil || res.Segments != 1 || res.Markers != 1 {
		t.Fatalf("pass after the horizon = %+v, %v; want one marker removed", res, err)
	}
	delete(want, 1)
	if got := markersIn(t, st, b, tp); !maps.Equal(got, want) {
		t.Fatalf("markers after the horizon %v, want %v", got, want)
	}
	if got := latest(readLog(t, st, b, tp)); !maps.Equal(got, map[string]string{"a": "2", "b": "1"}) {
		t.Fatalf("records after cleaning %v", got)
	}
	// Nothing is due any more.
	now = now.Add(time.Hour)
	if res, err := cl.CleanOnce(ctx); err != nil || res.Segments != 0 || res.Markers != 0 {
		t.Fatalf("a later pass = %+v, %v; want nothing to do", res, err)
	}
}
