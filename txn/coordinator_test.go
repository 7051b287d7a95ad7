package txn_test

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/ingest"
	"github.com/siltstream/silt/internal/testenv"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/postgres"
	"github.com/siltstream/silt/metastore/sqlite"
	"github.com/siltstream/silt/objectstore/mem"
	"github.com/siltstream/silt/segment"
	"github.com/siltstream/silt/txn"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// storeTopics resolves names through the store (the agent uses its cache).
type storeTopics struct{ s metastore.Store }

func (r storeTopics) Resolve(ctx context.Context, name string) (metastore.TopicID, int32, error) {
	t, err := r.s.Topic(ctx, name)
	return t.ID, t.Partitions, err
}

type env struct {
	store metastore.Store
	pipe  *ingest.Pipeline
	topic metastore.Topic
	c     *txn.Coordinator
	mine  bool // placement: does this agent coordinate?
}

// newEnv is a coordinator over SQLite whose markers go through a real
// write pipeline into an in-memory bucket.
func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newEnvOn(t, st)
}

// eachStore runs fn over a coordinator on SQLite and one on Postgres.
func eachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newEnv(t)) })
	t.Run("postgres", func(t *testing.T) {
		url := testenv.Postgres(t).NewDatabase(t)
		if err := postgres.Migrate(context.Background(), url); err != nil {
			t.Fatal(err)
		}
		st, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, newEnvOn(t, st))
	})
}

// newEnvOn is newEnv over st.
func newEnvOn(t *testing.T, st metastore.Store) *env {
	t.Helper()
	ctx := context.Background()
	var err error
	e := &env{store: st, mine: true}
	if e.topic, err = st.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	e.pipe, err = ingest.New(ingest.Config{AgentID: "a", FlushInterval: time.Millisecond, FlushBytes: 1 << 20, BufferBytes: 4 << 20, MaxUploads: 2}, mem.New(), st, nopObserver{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); e.pipe.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	e.c = e.coordinator(func(string) bool { return e.mine })
	return e
}

// coordinator returns another coordinator over e's store and pipeline: a
// second agent.
func (e *env) coordinator(isCoordinator func(string) bool) *txn.Coordinator {
	return txn.New(txn.Config{Store: e.store, Markers: e.pipe, Topics: storeTopics{e.store}, IsCoordinator: isCoordinator})
}

type nopObserver struct{}

func (nopObserver) Committed(metastore.TopicPartition, []metastore.IndexEntry, bool) {}
func (nopObserver) Vanished(metastore.TopicID)                                       {}

// write commits a transactional batch of n records for the producer to
// partition p, as Produce would after the coordinator admitted it.
func (e *env) write(t *testing.T, p int32, pid int64, epoch int16, seq int32, n int) int64 {
	t.Helper()
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: 0x10, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: 1000, MaxTimestamp: 1000,
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq, NumRecords: int32(n),
	}
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(fmt.Sprint(i))}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		rb.Records = r.AppendTo(rb.Records)
	}
	raw := rb.AppendTo(nil)
	rb.Length = int32(len(raw) - 12)
	raw = rb.AppendTo(nil)
	rb.CRC = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	data := rb.AppendTo(nil)
	hdr, err := segment.ValidateBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	pd, _, err := e.pipe.Submit(context.Background(), []ingest.Batch{{TP: metastore.TopicPartition{Topic: e.topic.ID, Partition: p}, TopicName: "t", Data: data, Header: hdr}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pd.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := pd.Results()[0]; r.Err != nil {
		t.Fatal(r.Err)
	} else {
		return r.BaseOffset
	}
	return -1
}

func (e *env) state(t *testing.T, p int32) metastore.PartitionState {
	t.Helper()
	states, err := e.store.Partitions(context.Background(), e.topic.ID)
	if err != nil {
		t.Fatal(err)
	}
	return states[p]
}

// A committed transaction: markers on every partition it touched close it
// (the LSO reaches the high watermark), its staged offsets reach the group,
// and a retried EndTxn succeeds without doing it again.
func TestCommitWritesMarkersAndOffsets(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tx, err := e.c.InitProducer(ctx, "tx", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	pid, epoch := tx.ProducerID, tx.Epoch
	codes, err := e.c.AddPartitions(ctx, "tx", pid, epoch, []txn.TopicPartitions{{Topic: "t", Partitions: []int32{0, 1}}}, false)
	if err != nil || len(codes) != 0 {
		t.Fatalf("add partitions: %v %v", codes, err)
	}
	first := e.write(t, 0, pid, epoch, 0, 3)
	e.write(t, 1, pid, epoch, 0, 2)
	if s := e.state(t, 0); s.LastStableOffset != first || s.HighWatermark != 3 {
		t.Fatalf("open transaction: %+v", s)
	}
	if err := e.c.AddOffsets(ctx, "tx", pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.CommitOffsets(ctx, "tx", pid, epoch, "g", []metastore.CommittedOffset{{Topic: "in", Partition: 0, Offset: 42}}); err != nil {
		t.Fatal(err)
	}
	if offs, _ := e.store.FetchOffsets(ctx, "g"); len(offs) != 0 {
		t.Fatalf("offsets visible before the commit: %v", offs)
	}
	if err := e.c.End(ctx, "tx", pid, epoch, true); err != nil {
		t.Fatal(err)
	}
	for p, hw := range []int64{4, 3} { // data + one marker each
		if s := e.state(t, int32(p)); s.HighWatermark != hw || s.LastStableOffset != hw {
			t.Fatalf("partition %d after commit: %+v, want high watermark and LSO %d", p, s, hw)
		}
	}
	if offs, err := e.store.FetchOffsets(ctx, "g"); err != nil || len(offs) != 1 || offs[0].Offset != 42 {
		t.Fatalf("group offsets after commit: %v %v", offs, err)
	}
	if err := e.c.End(ctx, "tx", pid, epoch, true); err != nil {
		t.Fatalf("retried EndTxn: %v", err)
	}
	if s := e.state(t, 0); s.HighWatermark != 4 {
		t.Fatalf("a retried EndTxn wrote another marker: %+v", s)
	}
}

// An aborted transaction is listed for read_committed readers, and a new
// InitProducer fences the old epoch.
func TestAbortAndFence(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tx, err := e.c.InitProducer(ctx, "tx", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	pid, epoch := tx.ProducerID, tx.Epoch
	if _, err := e.c.AddPartitions(ctx, "tx", pid, epoch, []txn.TopicPartitions{{Topic: "t", Partitions: []int32{0}}}, false); err != nil {
		t.Fatal(err)
	}
	first := e.write(t, 0, pid, epoch, 0, 2)
	if err := e.c.End(ctx, "tx", pid, epoch, false); err != nil {
		t.Fatal(err)
	}
	aborted, err := e.store.AbortedTxns(ctx, metastore.TopicPartition{Topic: e.topic.ID}, 0, 10)
	if err != nil || len(aborted) != 1 || aborted[0].ProducerID != pid || aborted[0].FirstOffset != first {
		t.Fatalf("aborted transactions: %+v %v", aborted, err)
	}
	next, err := e.c.InitProducer(ctx, "tx", 60000, -1, -1)
	if err != nil || next.ProducerID != pid || next.Epoch != epoch+1 {
		t.Fatalf("re-init: %+v %v, want producer %d epoch %d", next, err, pid, epoch+1)
	}
	_, err = e.c.AddPartitions(ctx, "tx", pid, epoch, []txn.TopicPartitions{{Topic: "t", Partitions: []int32{0}}}, false)
	if !errors.Is(err, kerr.ProducerFenced) {
		t.Fatalf("old epoch adding partitions: %v, want PRODUCER_FENCED", err)
	}
}

// Unknown partitions fail the whole AddPartitions (nothing is added), and
// an agent that does not coordinate the id says so.
func TestAddPartitionsErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tx, err := e.c.InitProducer(ctx, "tx", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := e.c.AddPartitions(ctx, "tx", tx.ProducerID, tx.Epoch, []txn.TopicPartitions{{Topic: "t", Partitions: []int32{0, 9}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if codes[metastore.TxnPartition{Topic: "t", Partition: 9}] != kerr.UnknownTopicOrPartition.Code ||
		codes[metastore.TxnPartition{Topic: "t", Partition: 0}] != kerr.OperationNotAttempted.Code {
		t.Fatalf("codes %v", codes)
	}
	if cur, _, _ := e.store.Txn(ctx, "tx"); len(cur.Partitions) != 0 {
		t.Fatalf("partitions added despite an unknown one: %v", cur.Partitions)
	}
	e.mine = false
	if err := e.c.End(ctx, "tx", tx.ProducerID, tx.Epoch, true); !errors.Is(err, kerr.NotCoordinator) {
		t.Fatalf("End on another agent's id: %v, want NOT_COORDINATOR", err)
	}
}

// A request a deposed coordinator still had in hand cannot end the
// transaction its successor runs. The scenario (seen in the fault test,
// where a read_committed reader lost a committed transaction's records):
// agent A takes EndTxn(abort) for transaction 1 and stalls before reading
// the state (a lock, a pause); placement moves to B; the client's retry
// aborts transaction 1 on B; the client starts transaction 2 on B and
// writes to partition 0. Then A, which still believes it coordinates the
// id, runs the stale EndTxn(abort): same producer id and epoch (before
// KIP-890 nothing else tells transactions apart), state Ongoing, so it
// aborted transaction 2's data on partition 0. The client, unaware, added
// its offsets (which began a new transaction on B) and committed: its
// offsets moved past records that read_committed readers never see.
//
// B's takeover claims the id (ClaimTxn), so A's stale request is refused
// with NOT_COORDINATOR and changes nothing.
func TestStaleEndTxnFromDeposedCoordinator(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		a := e.c // believes it coordinates throughout: its view lags
		tx, err := a.InitProducer(ctx, "tx", 60000, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		pid, epoch := tx.ProducerID, tx.Epoch
		add := func(c *txn.Coordinator, p int32) {
			t.Helper()
			if codes, err := c.AddPartitions(ctx, "tx", pid, epoch, []txn.TopicPartitions{{Topic: "t", Partitions: []int32{p}}}, false); err != nil || len(codes) != 0 {
				t.Fatalf("add partition %d: %v %v", p, codes, err)
			}
		}
		add(a, 0)
		e.write(t, 0, pid, epoch, 0, 2)

		b := e.coordinator(func(string) bool { return true })
		if err := b.End(ctx, "tx", pid, epoch, false); err != nil { // the client's retry
			t.Fatalf("abort on the new coordinator: %v", err)
		}
		add(b, 0) // transaction 2
		second := e.write(t, 0, pid, epoch, 2, 3)

		if err := a.End(ctx, "tx", pid, epoch, false); !errors.Is(err, kerr.NotCoordinator) {
			t.Fatalf("stale EndTxn(abort) on the deposed coordinator: %v, want NOT_COORDINATOR", err)
		}
		if err := b.AddOffsets(ctx, "tx", pid, epoch, "g"); err != nil {
			t.Fatal(err)
		}
		if err := b.CommitOffsets(ctx, "tx", pid, epoch, "g", []metastore.CommittedOffset{{Topic: "in", Partition: 0, Offset: 7}}); err != nil {
			t.Fatal(err)
		}
		if err := b.End(ctx, "tx", pid, epoch, true); err != nil {
			t.Fatalf("commit transaction 2: %v", err)
		}
		aborted, err := e.store.AbortedTxns(ctx, metastore.TopicPartition{Topic: e.topic.ID}, second, second+3)
		if err != nil || len(aborted) != 0 {
			t.Fatalf("committed transaction 2's records on partition 0 are inside aborted transactions %+v (%v)", aborted, err)
		}
		if s := e.state(t, 0); s.LastStableOffset != s.HighWatermark {
			t.Fatalf("partition 0 after the commit: %+v, want nothing open", s)
		}
	})
}
