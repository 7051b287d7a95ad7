package metastoretest

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/siltstream/silt/metastore"
)

// testTxnState: PutTxn is a compare-and-set on the stored transaction, so
// two coordinators cannot both move a transaction.
func testTxnState(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	if _, ok, err := s.Txn(ctx, "tx-a"); err != nil || ok {
		t.Fatalf("Txn of unknown id: ok=%v err=%v", ok, err)
	}
	a := metastore.Txn{TransactionalID: "tx-a", ProducerID: 42, Epoch: 0, State: metastore.TxnEmpty, TimeoutMs: 60000}
	if err := s.PutTxn(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.PutTxn(ctx, a, nil); !errors.Is(err, metastore.ErrTxnConflict) {
		t.Fatalf("second insert: %v, want ErrTxnConflict", err)
	}
	b := a
	b.State = metastore.TxnOngoing
	b.Partitions = []metastore.TxnPartition{{Topic: "t", Partition: 1}}
	b.Groups = []string{"g"}
	b.Offsets = []metastore.TxnOffset{{Group: "g", CommittedOffset: metastore.CommittedOffset{Topic: "in", Partition: 0, Offset: 7, LeaderEpoch: -1, Metadata: "m"}}}
	if err := s.PutTxn(ctx, b, &a); err != nil {
		t.Fatal(err)
	}
	// A coordinator still holding the old view is refused.
	stale := a
	stale.Epoch = 1
	if err := s.PutTxn(ctx, stale, &a); !errors.Is(err, metastore.ErrTxnConflict) {
		t.Fatalf("stale CAS: %v, want ErrTxnConflict", err)
	}
	got, ok, err := s.Txn(ctx, "tx-a")
	if err != nil || !ok {
		t.Fatalf("Txn: ok=%v err=%v", ok, err)
	}
	if got.ProducerID != 42 || got.Epoch != 0 || got.State != metastore.TxnOngoing || got.TimeoutMs != 60000 ||
		!reflect.DeepEqual(got.Partitions, b.Partitions) || !reflect.DeepEqual(got.Groups, b.Groups) || !reflect.DeepEqual(got.Offsets, b.Offsets) {
		t.Fatalf("Txn = %+v, want %+v", got, b)
	}
	if !got.HasPartition("t", 1) || got.HasPartition("t", 0) {
		t.Fatalf("HasPartition wrong for %+v", got.Partitions)
	}
	if byP, ok, err := s.TxnByProducer(ctx, 42); err != nil || !ok || byP.TransactionalID != "tx-a" {
		t.Fatalf("TxnByProducer = %+v %v %v", byP, ok, err)
	}
	if err := s.PutTxn(ctx, metastore.Txn{TransactionalID: "tx-b", ProducerID: 43, State: metastore.TxnEmpty}, nil); err != nil {
		t.Fatal(err)
	}
	all, err := s.Txns(ctx)
	if err != nil || len(all) != 2 || all[0].TransactionalID != "tx-a" || all[1].TransactionalID != "tx-b" {
		t.Fatalf("Txns = %+v, %v", all, err)
	}
}

// testTxnListsLostUpdate: two writers read one ongoing transaction; one
// adds a partition (AddPartitionsToTxn, on the transaction's coordinator),
// the other an offset (TxnOffsetCommit, on the group's coordinator, maybe
// another agent). The second to write still holds the transaction without
// the first's addition: it is refused, so no addition is lost. Silt lost
// partitions this way, and the producer's next batch to one was refused
// INVALID_TXN_STATE (confluent-kafka-python's send_offsets_to_transaction).
func testTxnListsLostUpdate(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	empty := metastore.Txn{TransactionalID: "lists", ProducerID: 7, State: metastore.TxnEmpty, TimeoutMs: 60000}
	if err := s.PutTxn(ctx, empty, nil); err != nil {
		t.Fatal(err)
	}
	read := empty
	read.State, read.StartedAt = metastore.TxnOngoing, time.UnixMilli(1_700_000_000_000)
	read.Partitions = []metastore.TxnPartition{{Topic: "out", Partition: 0}}
	read.Groups = []string{"g"}
	if err := s.PutTxn(ctx, read, &empty); err != nil {
		t.Fatal(err)
	}

	withPartition := read
	withPartition.Partitions = append(slices.Clone(read.Partitions), metastore.TxnPartition{Topic: "out", Partition: 1})
	if err := s.PutTxn(ctx, withPartition, &read); err != nil {
		t.Fatalf("adding a partition: %v", err)
	}
	withOffset := read
	withOffset.Offsets = []metastore.TxnOffset{{Group: "g", CommittedOffset: metastore.CommittedOffset{Topic: "in", Partition: 0, Offset: 10, LeaderEpoch: -1}}}
	if err := s.PutTxn(ctx, withOffset, &read); !errors.Is(err, metastore.ErrTxnConflict) {
		t.Fatalf("adding an offset over a transaction read before the partition was added: %v, want ErrTxnConflict", err)
	}
	got, ok, err := s.Txn(ctx, "lists")
	if err != nil || !ok || !got.HasPartition("out", 1) || len(got.Offsets) != 0 {
		t.Fatalf("Txn = %+v, %v, %v; want partition out/1 and no offsets", got, ok, err)
	}

	// Re-read, the offset is added over the partition.
	withOffset.Partitions = got.Partitions
	if err := s.PutTxn(ctx, withOffset, &got); err != nil {
		t.Fatalf("adding the offset over the transaction re-read: %v", err)
	}
	got, _, err = s.Txn(ctx, "lists")
	if err != nil || !got.HasPartition("out", 1) || len(got.Offsets) != 1 {
		t.Fatalf("Txn = %+v, %v; want partition out/1 and the offset", got, err)
	}
}

// testTxnStateABA: a coordinator that read a transaction in PrepareCommit
// and was paused must not complete the producer's next transaction, which
// is in PrepareCommit again with the same producer id and epoch: the
// compare-and-set tells transactions apart, not only states.
func testTxnStateABA(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	empty := metastore.Txn{TransactionalID: "aba", ProducerID: 5, State: metastore.TxnEmpty, TimeoutMs: 60000}
	if err := s.PutTxn(ctx, empty, nil); err != nil {
		t.Fatal(err)
	}
	step := func(prev metastore.Txn, state metastore.TxnState, started time.Time, parts ...metastore.TxnPartition) metastore.Txn {
		t.Helper()
		next := prev
		next.State, next.StartedAt, next.Partitions = state, started, parts
		if err := s.PutTxn(ctx, next, &prev); err != nil {
			t.Fatalf("PutTxn %s: %v", state, err)
		}
		return next
	}
	start1 := time.UnixMilli(1_700_000_000_000)
	first := step(empty, metastore.TxnOngoing, start1, metastore.TxnPartition{Topic: "a", Partition: 0})
	first = step(first, metastore.TxnPrepareCommit, start1, first.Partitions...)
	paused := first // coordinator B read this, then paused

	done := step(first, metastore.TxnCompleteCommit, time.Time{}, first.Partitions...)
	start2 := start1.Add(time.Second)
	second := step(done, metastore.TxnOngoing, start2, metastore.TxnPartition{Topic: "b", Partition: 0})
	second = step(second, metastore.TxnPrepareCommit, start2, second.Partitions...)

	late := paused
	late.State, late.StartedAt = metastore.TxnCompleteCommit, time.Time{}
	if err := s.PutTxn(ctx, late, &paused); !errors.Is(err, metastore.ErrTxnConflict) {
		t.Fatalf("completing the first transaction over the second: %v, want ErrTxnConflict", err)
	}
	got, ok, err := s.Txn(ctx, "aba")
	if err != nil || !ok || got.State != metastore.TxnPrepareCommit || !got.HasPartition("b", 0) || got.StartedAt.UnixMilli() != start2.UnixMilli() {
		t.Fatalf("Txn after the stale CAS = %+v, %v, %v; want the second transaction in PrepareCommit", got, ok, err)
	}
	step(second, metastore.TxnCompleteCommit, time.Time{}, second.Partitions...)
}

func txnBatch(cnt int64, pid int64, epoch int16, seq int32) metastore.ProducerBatch {
	b := pbatch(0, cnt, pid, epoch, seq)
	b.IsTransactional = true
	return b
}

func marker(pid int64, epoch int16, abort bool) metastore.ProducerBatch {
	b := pbatch(0, 1, pid, epoch, -1)
	b.IsTransactional, b.IsControl, b.Abort = true, true, abort
	return b
}

// testTxnBookkeeping: CommitFlush keeps ongoing transactions (the LSO) and
// aborted ones per partition; duplicate markers are harmless; a marker
// fences the producer's older epochs.
func testTxnBookkeeping(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "txns", 1)
	tp := metastore.TopicPartition{Topic: top.ID, Partition: 0}
	wantLSO := func(lso, hw int64) {
		t.Helper()
		ps, err := s.Partitions(ctx, top.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ps[0].LastStableOffset != lso || ps[0].HighWatermark != hw {
			t.Fatalf("LSO/HW = %d/%d, want %d/%d", ps[0].LastStableOffset, ps[0].HighWatermark, lso, hw)
		}
	}
	wantLSO(0, 0)
	commitBatches(t, s, "tx-1", batchChunk(tp, pbatch(0, 2, -1, 0, 0)))                            // 0-1
	res := commitBatches(t, s, "tx-2", batchChunk(tp, txnBatch(3, 7, 0, 0), txnBatch(1, 7, 0, 3))) // 2-4, 5
	wantResults(t, "transactional data", res.Batches[0], at(2), at(5))
	wantLSO(2, 6)
	if on, err := s.OngoingTxns(ctx, tp); err != nil || len(on) != 1 || on[0] != (metastore.OngoingTxn{ProducerID: 7, FirstOffset: 2}) {
		t.Fatalf("OngoingTxns = %+v, %v", on, err)
	}
	// Another producer's open transaction behind the first.
	commitBatches(t, s, "tx-3", batchChunk(tp, txnBatch(1, 8, 0, 0))) // 6
	wantLSO(2, 7)
	setTxn(t, s, "p7", 7, 0, metastore.TxnPrepareAbort)
	setTxn(t, s, "p8", 8, 0, metastore.TxnPrepareCommit)
	res = commitBatches(t, s, "tx-4", batchChunk(tp, marker(7, 0, true))) // 7
	wantResults(t, "abort marker", res.Batches[0], at(7))
	wantLSO(6, 8)
	res = commitBatches(t, s, "tx-5", batchChunk(tp, marker(8, 0, false), marker(7, 0, true))) // 8 commit, 9 duplicate abort
	wantResults(t, "markers", res.Batches[0], at(8), at(9))
	wantLSO(10, 10)
	ab, err := s.AbortedTxns(ctx, tp, 0, 10)
	if err != nil || len(ab) != 1 || ab[0] != (metastore.AbortedTxn{ProducerID: 7, FirstOffset: 2, LastOffset: 7}) {
		t.Fatalf("AbortedTxns = %+v, %v", ab, err)
	}
	for _, r := range [][2]int64{{0, 2}, {8, 20}} {
		if ab, err := s.AbortedTxns(ctx, tp, r[0], r[1]); err != nil || len(ab) != 0 {
			t.Fatalf("AbortedTxns%v = %+v, %v; want none", r, ab, err)
		}
	}
	// Producer 7 continues with a new transaction in the same epoch.
	setTxn(t, s, "p7", 7, 0, metastore.TxnPrepareCommit)
	res = commitBatches(t, s, "tx-6", batchChunk(tp, txnBatch(1, 7, 0, 4), marker(7, 0, false))) // 10, 11
	wantResults(t, "data and commit in one chunk", res.Batches[0], at(10), at(11))
	wantLSO(12, 12)
	// A marker of a bumped epoch fences the old epoch on the partition.
	setTxn(t, s, "p7", 7, 1, metastore.TxnPrepareAbort)
	commitBatches(t, s, "tx-7", batchChunk(tp, txnBatch(1, 7, 0, 5), marker(7, 1, true)))         // 12, 13
	res = commitBatches(t, s, "tx-8", batchChunk(tp, txnBatch(1, 7, 0, 6), txnBatch(1, 7, 1, 0))) // fenced, 14
	wantResults(t, "after bump", res.Batches[0], fenced, at(14))
	wantLSO(14, 15)
	if ab, err := s.AbortedTxns(ctx, tp, 0, 100); err != nil || len(ab) != 2 || ab[1] != (metastore.AbortedTxn{ProducerID: 7, FirstOffset: 12, LastOffset: 13}) {
		t.Fatalf("AbortedTxns = %+v, %v", ab, err)
	}
}

// testTxnMarkerFencesZombie: a marker leaves a fence on its partition even
// where its producer never wrote. A first transactional batch that passed
// the produce-time check, then waited in a buffer while its transaction was
// aborted with a bumped epoch, must be refused when it finally commits: not
// stored, not an ongoing transaction pinning the last stable offset.
func testTxnMarkerFencesZombie(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "zombie", 2)
	tp := metastore.TopicPartition{Topic: top.ID, Partition: 0}
	check := func(what string, hw int64, rows int) {
		t.Helper()
		ps := partitionStates(t, s, top.ID)
		if ps[0].HighWatermark != hw || ps[0].LastStableOffset != ps[0].HighWatermark {
			t.Fatalf("%s: HW/LSO = %d/%d, want %d/%d (no open transaction)", what, ps[0].HighWatermark, ps[0].LastStableOffset, hw, hw)
		}
		if on, err := s.OngoingTxns(ctx, tp); err != nil || len(on) != 0 {
			t.Fatalf("%s: OngoingTxns = %+v, %v; want none", what, on, err)
		}
		if got := index(t, s, tp, 0); len(got) != rows {
			t.Fatalf("%s: %d index rows, want %d: %+v", what, len(got), rows, got)
		}
	}
	setTxn(t, s, "p9", 9, 1, metastore.TxnPrepareAbort)
	res := commitBatches(t, s, "z-1", batchChunk(tp, marker(9, 1, true))) // 0
	wantResults(t, "abort marker of a producer new to the partition", res.Batches[0], at(0))
	check("after the marker", 1, 1)
	res = commitBatches(t, s, "z-2", batchChunk(tp, txnBatch(1, 9, 0, 0)))
	wantResults(t, "zombie batch of the aborted epoch", res.Batches[0], fenced)
	check("after the zombie batch", 1, 1)
	// Idempotent batches of the old epoch are fenced too.
	res = commitBatches(t, s, "z-3", batchChunk(tp, pbatch(0, 1, 9, 0, 0)))
	wantResults(t, "idempotent batch of the aborted epoch", res.Batches[0], fenced)
	check("after the idempotent batch", 1, 1)

	// The same within one flush: the marker is committed before the zombie.
	tp1 := metastore.TopicPartition{Topic: top.ID, Partition: 1}
	res = commitBatches(t, s, "z-4", batchChunk(tp1, marker(9, 1, true), txnBatch(1, 9, 0, 0)))
	wantResults(t, "marker then zombie in one chunk", res.Batches[0], at(0), fenced)
	if on, err := s.OngoingTxns(ctx, tp1); err != nil || len(on) != 0 {
		t.Fatalf("OngoingTxns after marker then zombie = %+v, %v; want none", on, err)
	}
	if ps := partitionStates(t, s, top.ID); ps[1].HighWatermark != 1 || ps[1].LastStableOffset != 1 {
		t.Fatalf("partition 1 HW/LSO = %d/%d, want 1/1", ps[1].HighWatermark, ps[1].LastStableOffset)
	}

	// The producer's new epoch writes normally.
	setTxn(t, s, "p9", 9, 1, metastore.TxnPrepareCommit)
	res = commitBatches(t, s, "z-5", batchChunk(tp, txnBatch(2, 9, 1, 0), marker(9, 1, false))) // 1-2, 3
	wantResults(t, "the new epoch", res.Batches[0], at(1), at(3))
	check("after the new epoch's transaction", 4, 2)
}

// setTxn moves transactional id id (producer pid) to epoch and state, as
// its coordinator does before writing markers.
func setTxn(t *testing.T, s metastore.Store, id string, pid int64, epoch int16, state metastore.TxnState) {
	t.Helper()
	ctx := ctxFor(t)
	prev, ok, err := s.Txn(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	next := metastore.Txn{TransactionalID: id, ProducerID: pid, Epoch: epoch, State: state, TimeoutMs: 60000}
	var p *metastore.Txn
	if ok {
		p = &prev
	}
	if err := s.PutTxn(ctx, next, p); err != nil {
		t.Fatalf("PutTxn(%s %d/%d %s): %v", id, pid, epoch, state, err)
	}
}

// testTxnStaleMarker: a marker for a transaction that already ended (a
// deposed coordinator finishing a Prepare* state the first coordinator had
// completed, its flush delayed) lands after the data of the producer's
// next transaction, same producer id and epoch. It must change nothing:
// not end the new transaction (whose data would become visible, or be
// hidden, for good), not be appended.
func testTxnStaleMarker(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	top := createTopic(t, s, "stale", 1)
	tp := metastore.TopicPartition{Topic: top.ID, Partition: 0}
	state := func(what string, lso, hw int64) {
		t.Helper()
		ps := partitionStates(t, s, top.ID)
		if ps[0].LastStableOffset != lso || ps[0].HighWatermark != hw {
			t.Fatalf("%s: LSO/HW = %d/%d, want %d/%d", what, ps[0].LastStableOffset, ps[0].HighWatermark, lso, hw)
		}
	}
	// The first transaction, committed by coordinator A.
	setTxn(t, s, "tx", 7, 0, metastore.TxnOngoing)
	commitBatches(t, s, "s-1", batchChunk(tp, txnBatch(1, 7, 0, 0))) // 0
	setTxn(t, s, "tx", 7, 0, metastore.TxnPrepareCommit)
	res := commitBatches(t, s, "s-2", batchChunk(tp, marker(7, 0, false))) // 1
	wantResults(t, "the first transaction's marker", res.Batches[0], at(1))
	setTxn(t, s, "tx", 7, 0, metastore.TxnCompleteCommit)
	state("after the first transaction", 2, 2)

	// The next transaction, same producer id and epoch.
	setTxn(t, s, "tx", 7, 0, metastore.TxnOngoing)
	commitBatches(t, s, "s-3", batchChunk(tp, txnBatch(1, 7, 0, 1))) // 2
	state("the second transaction open", 2, 3)

	// Coordinator B's markers for the first transaction land now.
	stale := metastore.BatchResult{BaseOffset: -1, Err: metastore.ErrStaleMarker}
	res = commitBatches(t, s, "s-4", batchChunk(tp, marker(7, 0, false)))
	wantResults(t, "stale commit marker during the next transaction", res.Batches[0], stale)
	res = commitBatches(t, s, "s-5", batchChunk(tp, marker(7, 0, true)))
	wantResults(t, "stale abort marker during the next transaction", res.Batches[0], stale)
	state("after the stale markers", 2, 3)
	if on, err := s.OngoingTxns(ctx, tp); err != nil || len(on) != 1 || on[0] != (metastore.OngoingTxn{ProducerID: 7, FirstOffset: 2}) {
		t.Fatalf("OngoingTxns after the stale markers = %+v, %v; want the second transaction at 2", on, err)
	}
	if rows := index(t, s, tp, 0); len(rows) != 3 {
		t.Fatalf("index after the stale markers: %+v; want 3 rows (the stale markers not appended)", rows)
	}

	// The second transaction aborts; its own marker ends it.
	setTxn(t, s, "tx", 7, 0, metastore.TxnPrepareAbort)
	res = commitBatches(t, s, "s-6", batchChunk(tp, marker(7, 0, false), marker(7, 0, true))) // refused, 3
	wantResults(t, "commit marker during PrepareAbort, then the abort", res.Batches[0], stale, at(3))
	setTxn(t, s, "tx", 7, 0, metastore.TxnCompleteAbort)
	state("after the abort", 4, 4)
	if ab, err := s.AbortedTxns(ctx, tp, 0, 100); err != nil || len(ab) != 1 || ab[0] != (metastore.AbortedTxn{ProducerID: 7, FirstOffset: 2, LastOffset: 3}) {
		t.Fatalf("AbortedTxns = %+v, %v; want the second transaction [2, 3]", ab, err)
	}

	// Once no transaction is open, a commit marker is stale; an abort
	// marker closes a dangling write (data committed after its
	// transaction ended).
	commitBatches(t, s, "s-7", batchChunk(tp, txnBatch(1, 7, 0, 2))) // 4, dangling
	res = commitBatches(t, s, "s-8", batchChunk(tp, marker(7, 0, false)))
	wantResults(t, "commit marker with no transaction open", res.Batches[0], stale)
	state("dangling write", 4, 5)
	res = commitBatches(t, s, "s-9", batchChunk(tp, marker(7, 0, true))) // 5
	wantResults(t, "abort of a dangling write", res.Batches[0], at(5))
	state("after aborting the dangling write", 6, 6)

	// A marker of a producer with no transaction at all is stale.
	res = commitBatches(t, s, "s-10", batchChunk(tp, marker(99, 0, true)))
	wantResults(t, "marker of an unknown producer", res.Batches[0], stale)
	state("after the unknown producer's marker", 6, 6)
}

// testTxnExpiry: idle transactional ids not mid-transaction are forgotten.
func testTxnExpiry(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	done := metastore.Txn{TransactionalID: "idle", ProducerID: 1, State: metastore.TxnCompleteCommit, TimeoutMs: 1000}
	open := metastore.Txn{TransactionalID: "busy", ProducerID: 2, State: metastore.TxnOngoing, TimeoutMs: 1000, StartedAt: time.Now()}
	for _, tx := range []metastore.Txn{done, open} {
		if err := s.PutTxn(ctx, tx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.ExpireTxns(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("ExpireTxns of nothing old = %d, %v", n, err)
	}
	if n, err := s.ExpireTxns(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("ExpireTxns = %d, %v; want the idle one only", n, err)
	}
	if _, ok, _ := s.Txn(ctx, "idle"); ok {
		t.Fatal("the idle transactional id is still there")
	}
	if _, ok, _ := s.Txn(ctx, "busy"); !ok {
		t.Fatal("an ongoing transaction was expired")
	}
}

// testTxnCoordinatorClaim: once another agent claims a transactional id,
// puts from the earlier claim are refused and change nothing; unfenced
// puts (epoch 0) and puts from the latest claim go through.
func testTxnCoordinatorClaim(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	first, err := s.ClaimTxn(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	empty := metastore.Txn{TransactionalID: "tx", ProducerID: 42, State: metastore.TxnEmpty, TimeoutMs: 60000, CoordinatorEpoch: first}
	if err := s.PutTxn(ctx, empty, nil); err != nil {
		t.Fatal(err)
	}
	second, err := s.ClaimTxn(ctx, "tx")
	if err != nil || second <= first {
		t.Fatalf("second claim = %d, %v; want above %d", second, err, first)
	}
	ongoing := empty
	ongoing.State, ongoing.StartedAt = metastore.TxnOngoing, time.UnixMilli(1000)
	if err := s.PutTxn(ctx, ongoing, &empty); !errors.Is(err, metastore.ErrCoordinatorMoved) {
		t.Fatalf("put from the superseded claim: %v, want ErrCoordinatorMoved", err)
	}
	if got, _, _ := s.Txn(ctx, "tx"); got.State != metastore.TxnEmpty {
		t.Fatalf("refused put changed the transaction: %+v", got)
	}
	ongoing.CoordinatorEpoch = second
	if err := s.PutTxn(ctx, ongoing, &empty); err != nil {
		t.Fatalf("put from the current claim: %v", err)
	}
	unfenced := ongoing
	unfenced.CoordinatorEpoch = 0
	unfenced.Groups = []string{"g"}
	if err := s.PutTxn(ctx, unfenced, &ongoing); err != nil {
		t.Fatalf("unfenced put: %v", err)
	}
	if other, err := s.ClaimTxn(ctx, "other"); err != nil || other != 1 {
		t.Fatalf("first claim of another id = %d, %v; want 1", other, err)
	}
}

// testTxnCommitAppliesOffsets: the put that completes a commit applies the
// transaction's offsets, in the same store transaction; a refused put, and
// a completed abort, apply none.
func testTxnCommitAppliesOffsets(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	off := func(p int32, o int64) metastore.TxnOffset {
		return metastore.TxnOffset{Group: "g", CommittedOffset: metastore.CommittedOffset{Topic: "in", Partition: p, Offset: o, LeaderEpoch: -1}}
	}
	prepare := metastore.Txn{TransactionalID: "tx", ProducerID: 42, State: metastore.TxnPrepareCommit, TimeoutMs: 60000,
		Groups: []string{"g", "h"}, StartedAt: time.UnixMilli(1000),
		Offsets: []metastore.TxnOffset{off(0, 5), off(1, 9), off(0, 7),
			{Group: "h", CommittedOffset: metastore.CommittedOffset{Topic: "in", Partition: 0, Offset: 3, LeaderEpoch: -1}}}}
	if err := s.PutTxn(ctx, prepare, nil); err != nil {
		t.Fatal(err)
	}
	abort := prepare
	abort.State, abort.Offsets = metastore.TxnCompleteAbort, nil
	stale := prepare
	stale.StartedAt = time.UnixMilli(999) // another transaction's view
	if err := s.PutTxn(ctx, abort, &stale); !errors.Is(err, metastore.ErrTxnConflict) {
		t.Fatalf("put over a stale view: %v, want ErrTxnConflict", err)
	}
	if offs, err := s.FetchOffsets(ctx, "g"); err != nil || len(offs) != 0 {
		t.Fatalf("offsets before the commit completes: %+v, %v", offs, err)
	}
	done := prepare
	done.State, done.Groups, done.Offsets, done.StartedAt = metastore.TxnCompleteCommit, nil, nil, time.Time{}
	if err := s.PutTxn(ctx, done, &prepare); err != nil {
		t.Fatal(err)
	}
	offs, err := s.FetchOffsets(ctx, "g")
	want := []metastore.CommittedOffset{{Topic: "in", Partition: 0, Offset: 7, LeaderEpoch: -1}, {Topic: "in", Partition: 1, Offset: 9, LeaderEpoch: -1}}
	if err != nil || !reflect.DeepEqual(offs, want) {
		t.Fatalf("offsets of g after the commit = %+v, %v; want %+v", offs, err, want)
	}
	if offs, err := s.FetchOffsets(ctx, "h"); err != nil || len(offs) != 1 || offs[0].Offset != 3 {
		t.Fatalf("offsets of h after the commit = %+v, %v", offs, err)
	}
}
