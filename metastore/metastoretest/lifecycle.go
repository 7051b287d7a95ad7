package metastoretest

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/siltstream/silt/metastore"
)

func logStart(t *testing.T, s metastore.Store, tp metastore.TopicPartition) int64 {
	t.Helper()
	return partitionStates(t, s, tp.Topic)[tp.Partition].LogStartOffset
}

func bases(es []metastore.IndexEntry) []int64 {
	out := []int64{}
	for _, e := range es {
		out = append(out, e.BaseOffset)
	}
	return out
}

// testAdvanceLogStart: DeleteRecords' rules. -1 is the high watermark;
// above it, or another negative offset, is out of range; the log start
// never moves back; rows wholly below it go, a row it cuts through stays.
func testAdvanceLogStart(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "dr", 2)
	tp := metastore.TopicPartition{Topic: top.ID}
	for i := 0; i < 5; i++ { // [0,9] [10,19] ... [40,49]
		commit(t, s, fmt.Sprintf("seg-%d", i), chunk(top.ID, 0, 10))
	}
	for _, bad := range []int64{51, -2} {
		if _, err := s.AdvanceLogStart(ctx, tp, bad); !errors.Is(err, metastore.ErrOffsetOutOfRange) {
			t.Fatalf("AdvanceLogStart(%d) = %v, want ErrOffsetOutOfRange", bad, err)
		}
	}
	if ls, err := s.AdvanceLogStart(ctx, tp, 15); err != nil || ls != 15 {
		t.Fatalf("AdvanceLogStart(15) = %d, %v; want 15", ls, err)
	}
	if got := logStart(t, s, tp); got != 15 {
		t.Fatalf("log start %d, want 15", got)
	}
	if got := bases(index(t, s, tp, 0)); !reflect.DeepEqual(got, []int64{10, 20, 30, 40}) {
		t.Fatalf("rows after the log start moved to 15: %v, want the row holding 15 and the rest", got)
	}
	if ls, err := s.AdvanceLogStart(ctx, tp, 5); err != nil || ls != 15 {
		t.Fatalf("AdvanceLogStart(5) = %d, %v; want 15 (never backwards)", ls, err)
	}
	if ls, err := s.AdvanceLogStart(ctx, tp, -1); err != nil || ls != 50 {
		t.Fatalf("AdvanceLogStart(-1) = %d, %v; want the high watermark 50", ls, err)
	}
	if got := index(t, s, tp, 0); len(got) != 0 {
		t.Fatalf("rows left after deleting up to the high watermark: %v", bases(got))
	}
	if ps := partitionStates(t, s, top.ID); ps[0].HighWatermark != 50 || ps[1].LogStartOffset != 0 {
		t.Fatalf("partitions %+v: high watermark must stay, other partitions untouched", ps)
	}
	// The log goes on from the high watermark.
	if r := commit(t, s, "seg-after", chunk(top.ID, 0, 3)); r.BaseOffsets[0] != 50 {
		t.Fatalf("next commit at %d, want 50", r.BaseOffsets[0])
	}
	if _, err := s.AdvanceLogStart(ctx, metastore.TopicPartition{Topic: top.ID, Partition: 7}, 0); !errors.Is(err, metastore.ErrUnknownTopic) {
		t.Fatalf("AdvanceLogStart of a missing partition = %v, want ErrUnknownTopic", err)
	}
}

// testApplyRetention: Kafka's rules at the granularity of index rows.
func testApplyRetention(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "ret", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	// Rows [0,9] ... [50,59], 1000 bytes each, max timestamps 1000, 2000,
	// 9000 (out of order, as producers may set them), 4000, 5000, 6000.
	for i, ts := range []int64{1000, 2000, 9000, 4000, 5000, 6000} {
		c := chunk(top.ID, 0, 10)
		c.Length, c.MinTimestamp, c.MaxTimestamp = 1000, ts-500, ts
		commit(t, s, fmt.Sprintf("seg-%d", i), c)
	}
	apply := func(p metastore.RetentionPolicy, want metastore.RetentionResult) {
		t.Helper()
		got, err := s.ApplyRetention(ctx, tp, p)
		if err != nil || got != want {
			t.Fatalf("ApplyRetention(%+v) = %+v, %v; want %+v", p, got, err, want)
		}
		if ls := logStart(t, s, tp); ls != want.LogStartOffset {
			t.Fatalf("log start %d, want %d", ls, want.LogStartOffset)
		}
	}
	none := metastore.RetentionPolicy{ExpireBefore: math.MinInt64, MaxBytes: -1}
	apply(none, metastore.RetentionResult{})
	// Time: expired rows go from the start until the first one kept, even
	// if later rows are older (Kafka stops at the first segment kept).
	apply(metastore.RetentionPolicy{ExpireBefore: 5500, MaxBytes: -1},
		metastore.RetentionResult{LogStartOffset: 20, Moved: true, ExpiredRows: 2, ExpiredBytes: 2000})
	if got := bases(index(t, s, tp, 0)); !reflect.DeepEqual(got, []int64{20, 30, 40, 50}) {
		t.Fatalf("rows %v after time retention", got)
	}
	apply(metastore.RetentionPolicy{ExpireBefore: 5500, MaxBytes: -1}, metastore.RetentionResult{LogStartOffset: 20})
	// Bytes: keep at most 2500 bytes: a row goes while the rows after it
	// hold at least 2500.
	apply(metastore.RetentionPolicy{ExpireBefore: math.MinInt64, MaxBytes: 2500},
		metastore.RetentionResult{LogStartOffset: 30, Moved: true, ExpiredRows: 1, ExpiredBytes: 1000})
	apply(metastore.RetentionPolicy{ExpireBefore: math.MinInt64, MaxBytes: 2000},
		metastore.RetentionResult{LogStartOffset: 40, Moved: true, ExpiredRows: 1, ExpiredBytes: 1000})
	// Both: whichever goes further.
	apply(metastore.RetentionPolicy{ExpireBefore: 6500, MaxBytes: 1 << 30},
		metastore.RetentionResult{LogStartOffset: 60, Moved: true, ExpiredRows: 2, ExpiredBytes: 2000})
	if got := index(t, s, tp, 0); len(got) != 0 {
		t.Fatalf("rows %v after everything expired", bases(got))
	}
	if ps := partitionStates(t, s, top.ID); ps[0].HighWatermark != 60 {
		t.Fatalf("high watermark %d, want 60", ps[0].HighWatermark)
	}
	// A log start moved by DeleteRecords into a row: retention keeps it
	// there until the row itself expires.
	c := chunk(top.ID, 0, 10)
	c.MaxTimestamp = 7000
	commit(t, s, "seg-6", c) // [60,69]
	if _, err := s.AdvanceLogStart(ctx, tp, 65); err != nil {
		t.Fatal(err)
	}
	apply(metastore.RetentionPolicy{ExpireBefore: 7000, MaxBytes: -1}, metastore.RetentionResult{LogStartOffset: 65})
	if _, err := s.ApplyRetention(ctx, metastore.TopicPartition{Topic: top.ID, Partition: 3}, none); !errors.Is(err, metastore.ErrUnknownTopic) {
		t.Fatalf("ApplyRetention of a missing partition = %v, want ErrUnknownTopic", err)
	}
}

// testPruneBelowLogStart: aborted transactions and idempotent producer
// state below the log start are pruned with the rows; an open
// transaction's state stays.
func testPruneBelowLogStart(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "prune", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	commitBatches(t, s, "p-1", batchChunk(tp, pbatch(0, 2, 5, 0, 0))) // 0-1 producer 5, seq 0-1
	commitBatches(t, s, "p-2", batchChunk(tp, txnBatch(2, 7, 0, 0)))  // 2-3 producer 7's transaction
	setTxn(t, s, "p7", 7, 0, metastore.TxnPrepareAbort)               //
	commitBatches(t, s, "p-3", batchChunk(tp, marker(7, 0, true)))    // 4 abort
	commitBatches(t, s, "p-4", batchChunk(tp, txnBatch(1, 8, 0, 0)))  // 5 producer 8, open
	commitBatches(t, s, "p-5", batchChunk(tp, pbatch(0, 1, 9, 0, 0))) // 6 producer 9
	if ab, err := s.AbortedTxns(ctx, tp, 0, 10); err != nil || len(ab) != 1 {
		t.Fatalf("AbortedTxns = %+v, %v; want one", ab, err)
	}
	producers := func() []metastore.PartitionProducer {
		t.Helper()
		ps, err := s.PartitionProducers(ctx, tp)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ps {
			if ps[i].LastTimestamp <= 0 {
				t.Fatalf("producer %d: last timestamp %d", ps[i].ProducerID, ps[i].LastTimestamp)
			}
			ps[i].LastTimestamp = 0
		}
		return ps
	}
	want := []metastore.PartitionProducer{
		{ProducerID: 5, ProducerEpoch: 0, LastSequence: 1, TxnStartOffset: -1},
		{ProducerID: 7, ProducerEpoch: 0, LastSequence: 1, TxnStartOffset: -1},
		{ProducerID: 8, ProducerEpoch: 0, LastSequence: 0, TxnStartOffset: 5},
		{ProducerID: 9, ProducerEpoch: 0, LastSequence: 0, TxnStartOffset: -1},
	}
	if got := producers(); !reflect.DeepEqual(got, want) {
		t.Fatalf("PartitionProducers = %+v, want %+v", got, want)
	}
	if _, err := s.AdvanceLogStart(ctx, tp, 6); err != nil {
		t.Fatal(err)
	}
	// DescribeProducers' view: producers whose newest batch is below the
	// log start are gone, unless their transaction is still open.
	if got := producers(); !reflect.DeepEqual(got, []metastore.PartitionProducer{want[2], want[3]}) {
		t.Fatalf("PartitionProducers after the log start moved = %+v, want %+v", got, want[2:])
	}
	if ab, err := s.AbortedTxns(ctx, tp, 6, 10); err != nil || len(ab) != 0 {
		t.Fatalf("AbortedTxns from the log start = %+v, %v; want none (pruned)", ab, err)
	}
	// From below the log start the list is refused, not given short: a
	// reader holding records from before the move would take aborted
	// records for committed ones.
	if ab, err := s.AbortedTxns(ctx, tp, 0, 10); !errors.Is(err, metastore.ErrOffsetOutOfRange) {
		t.Fatalf("AbortedTxns from below the log start = %+v, %v; want ErrOffsetOutOfRange", ab, err)
	}
	// Producer 5's state is gone: its next batch is not checked against
	// a sequence it can no longer prove (Kafka: UNKNOWN_PRODUCER_ID
	// territory; Silt accepts as for a new producer). Producer 9's stays.
	res := commitBatches(t, s, "p-6", batchChunk(tp, pbatch(0, 1, 5, 0, 7), pbatch(1, 1, 9, 0, 5)))
	wantResults(t, "after pruning", res.Batches[0], at(7), gap)
	// Producer 8's transaction is still open: the LSO stays at its start.
	if ps := partitionStates(t, s, top.ID); ps[0].LastStableOffset != 5 {
		t.Fatalf("LSO %d, want 5 (open transaction)", ps[0].LastStableOffset)
	}
}

// testGCDoomsOnlyUnreferenced: a segment is doomed only once no index row
// of any partition references it; a doomed upload can never commit or be
// recorded again; the queue releases objects only after the grace period.
func testGCDoomsOnlyUnreferenced(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "gc", 2)
	tp0 := metastore.TopicPartition{Topic: top.ID, Partition: 0}
	tp1 := metastore.TopicPartition{Topic: top.ID, Partition: 1}
	commit(t, s, "shared", chunk(top.ID, 0, 10), chunk(top.ID, 1, 10)) // 2000 bytes
	commit(t, s, "only-0", chunk(top.ID, 0, 10))                       // 1000 bytes
	holds := func(objects, bytes int64) {
		t.Helper()
		if o, b, err := s.Holdings(ctx); err != nil || o != objects || b != bytes {
			t.Fatalf("Holdings = %d objects, %d bytes, %v; want %d, %d", o, b, err, objects, bytes)
		}
	}
	holds(2, 3000)
	doom := func(want int) {
		t.Helper()
		n, _, err := s.DoomUnreferenced(ctx, 100)
		if err != nil || n != want {
			t.Fatalf("DoomUnreferenced = %d, %v; want %d", n, err, want)
		}
	}
	doom(0)
	if _, err := s.AdvanceLogStart(ctx, tp0, 20); err != nil {
		t.Fatal(err)
	}
	doom(1) // only-0; shared is still referenced by partition 1
	doom(0) // candidates are consumed
	if objs, _, err := s.GCBacklog(ctx); err != nil || objs != 1 {
		t.Fatalf("GCBacklog = %d, %v; want 1", objs, err)
	}
	if _, err := s.AdvanceLogStart(ctx, tp1, 10); err != nil {
		t.Fatal(err)
	}
	doom(1)
	objs, bytes, err := s.GCBacklog(ctx)
	if err != nil || objs != 2 || bytes != 3000 {
		t.Fatalf("GCBacklog = %d objects, %d bytes, %v; want 2, 3000", objs, bytes, err)
	}
	holds(2, 3000) // doomed, not deleted yet: still in the bucket
	if d, err := s.DoomedObjects(ctx, time.Hour, 10); err != nil || len(d) != 0 {
		t.Fatalf("DoomedObjects(grace 1h) = %+v, %v; want none yet", d, err)
	}
	var d []metastore.DoomedObject
	waitFor(t, "doomed objects past a 1ms grace", 30*time.Second, func() bool {
		d, err = s.DoomedObjects(ctx, time.Millisecond, 10)
		return err == nil && len(d) == 2
	})
	sort.Slice(d, func(i, j int) bool { return d[i].Key < d[j].Key })
	if d[0].Key != "only-0" || d[0].Size != 1000 || d[1].Key != "shared" || d[1].Size != 2000 {
		t.Fatalf("DoomedObjects = %+v", d)
	}
	// A doomed segment never commits again (a retry whose first reply was
	// lost), nor is it recorded as an upload again.
	_, err = s.CommitFlush(ctx, metastore.Flush{SegmentKey: "shared", AgentID: "agent-1", Size: 2000, Chunks: []metastore.Chunk{chunk(top.ID, 0, 10)}})
	if !errors.Is(err, metastore.ErrUploadNotRecorded) {
		t.Fatalf("retried commit of a doomed segment = %v, want ErrUploadNotRecorded", err)
	}
	if err := s.RecordUpload(ctx, "shared", "agent-1"); err != nil {
		t.Fatal(err)
	}
	if o, err := s.Orphans(ctx, time.Now().Add(time.Hour)); err != nil || len(o) != 0 {
		t.Fatalf("Orphans = %+v, %v; a doomed key was recorded again", o, err)
	}
	if err := s.ForgetDoomed(ctx, []string{"only-0", "shared"}); err != nil {
		t.Fatal(err)
	}
	if objs, _, err := s.GCBacklog(ctx); err != nil || objs != 0 {
		t.Fatalf("GCBacklog after ForgetDoomed = %d, %v; want 0", objs, err)
	}
	holds(0, 0)
	if err := s.RecordUpload(ctx, "in-flight", "agent-1"); err != nil {
		t.Fatal(err)
	}
	holds(1, 0) // an upload in flight: its size is not known yet
}

// testGCOrphansAndAbandoned: a forgotten upload is doomed in the same step;
// an abandoned upload (its commit refused) is queued again, but a key with
// a segment record never is.
func testGCOrphansAndAbandoned(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "orph", 1)
	commit(t, s, "committed", chunk(top.ID, 0, 1))
	if err := s.RecordUpload(ctx, "orphan", "agent-1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ForgetUpload(ctx, "orphan"); err != nil || !ok {
		t.Fatalf("ForgetUpload = %v, %v", ok, err)
	}
	for _, k := range []string{"committed", "orphan", "never-recorded"} {
		if err := s.AbandonUpload(ctx, k); err != nil {
			t.Fatalf("AbandonUpload(%s): %v", k, err)
		}
	}
	var keys []string
	waitFor(t, "doomed objects past a 1ms grace", 30*time.Second, func() bool {
		d, err := s.DoomedObjects(ctx, time.Millisecond, 10)
		keys = keys[:0]
		for _, o := range d {
			keys = append(keys, o.Key)
		}
		return err == nil && len(keys) == 2
	})
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, []string{"never-recorded", "orphan"}) {
		t.Fatalf("doomed %v; want the orphan and the abandoned key, never the committed segment", keys)
	}
	if rows := index(t, s, metastore.TopicPartition{Topic: top.ID}, 0); len(rows) != 1 {
		t.Fatalf("committed rows %v", rows)
	}
}

// testDeleteTopicDoomsItsSegments: a deleted topic's segments become
// garbage, except those another topic still references.
func testDeleteTopicDoomsItsSegments(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	gone := createTopic(t, s, "gone", 1)
	kept := createTopic(t, s, "kept", 1)
	commit(t, s, "mixed", chunk(gone.ID, 0, 1), chunk(kept.ID, 0, 1))
	commit(t, s, "gone-only", chunk(gone.ID, 0, 1))
	if err := s.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	n, _, err := s.DoomUnreferenced(ctx, 100)
	if err != nil || n != 1 {
		t.Fatalf("DoomUnreferenced = %d, %v; want 1 (gone-only)", n, err)
	}
	waitFor(t, "the deleted topic's segment past a 1ms grace", 30*time.Second, func() bool {
		d, err := s.DoomedObjects(ctx, time.Millisecond, 10)
		return err == nil && len(d) == 1 && d[0].Key == "gone-only"
	})
	if rows := index(t, s, metastore.TopicPartition{Topic: kept.ID}, 0); len(rows) != 1 || rows[0].SegmentKey != "mixed" {
		t.Fatalf("kept topic rows %+v", rows)
	}
}

// testDoomLimit: candidates are worked through in bounded batches.
func testDoomLimit(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "lim", 1)
	for i := 0; i < 5; i++ {
		commit(t, s, fmt.Sprintf("seg-%d", i), chunk(top.ID, 0, 1))
	}
	if _, err := s.AdvanceLogStart(ctx, metastore.TopicPartition{Topic: top.ID}, -1); err != nil {
		t.Fatal(err)
	}
	total := 0
	for rounds := 0; ; rounds++ {
		n, more, err := s.DoomUnreferenced(ctx, 2)
		if err != nil || rounds > 5 {
			t.Fatalf("DoomUnreferenced: %v after %d rounds", err, rounds)
		}
		total += n
		if !more {
			break
		}
	}
	if total != 5 {
		t.Fatalf("doomed %d, want 5", total)
	}
}
