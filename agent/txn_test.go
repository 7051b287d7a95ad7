package agent_test

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/agent"
)

// consumeValues reads topic from the start until want records arrived (or
// fails), then drains briefly to catch extra ones.
func consumeValues(t *testing.T, ta *testAgent, topic string, iso kgo.IsolationLevel, want int) []string {
	t.Helper()
	cl := ta.client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso), kgo.FetchMaxWait(200*time.Millisecond))
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	extra := time.Time{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		if len(got) >= want && extra.IsZero() {
			extra = time.Now().Add(500 * time.Millisecond)
		}
		if !extra.IsZero() && time.Now().After(extra) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d records (%v), want %d", len(got), got, want)
		}
	}
	sortStrings(got)
	return got
}

func endOffsets(t *testing.T, cl *kgo.Client, topic string, committed bool) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	var (
		l   kadm.ListedOffsets
		err error
	)
	if committed {
		l, err = adm.ListCommittedOffsets(ctx, topic)
	} else {
		l, err = adm.ListEndOffsets(ctx, topic)
	}
	if err != nil || l.Error() != nil {
		t.Fatalf("list offsets: %v %v", err, l.Error())
	}
	o, _ := l.Lookup(topic, 0)
	return o.Offset
}

func transact(t *testing.T, cl *kgo.Client, commit bool, values ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction (commit=%v): %v", commit, err)
	}
}

// TestTransactions: a committed and an aborted transaction; read_committed
// sees only committed records and never reads past the LSO of an open
// transaction; read_uncommitted sees everything; a second producer with
// the same transactional id fences the first; a transaction whose producer
// goes silent is aborted by timeout and the LSO advances.
func TestTransactions(t *testing.T) {
	forEachBackend(t, testTransactions)
}

func testTransactions(t *testing.T, bk backend) {
	ta := startAgent(t, bk, func(c *agent.Config) { c.AutoCreateTopics = false })
	admin := ta.client(t)
	createTopic(t, admin, "txn", 1, nil)

	p1 := ta.client(t, kgo.TransactionalID("tx-1"), kgo.DefaultProduceTopic("txn"), kgo.TransactionTimeout(60*time.Second))
	transact(t, p1, true, "c1", "c2")
	transact(t, p1, false, "a1", "a2")
	transact(t, p1, true, "c3")

	if got, want := consumeValues(t, ta, "txn", kgo.ReadCommitted(), 3), []string{"c1", "c2", "c3"}; !equal(got, want) {
		t.Fatalf("read_committed = %v, want %v", got, want)
	}
	if got := consumeValues(t, ta, "txn", kgo.ReadUncommitted(), 5); len(got) != 5 {
		t.Fatalf("read_uncommitted = %v, want 5 records", got)
	}

	// An open transaction holds the LSO back.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p1.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p1.ProduceSync(ctx, &kgo.Record{Value: []byte("o1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	hw, lso := endOffsets(t, admin, "txn", false), endOffsets(t, admin, "txn", true)
	if lso >= hw {
		t.Fatalf("open transaction: LSO %d, HW %d; want LSO < HW", lso, hw)
	}
	if got := consumeValues(t, ta, "txn", kgo.ReadCommitted(), 3); len(got) != 3 {
		t.Fatalf("read_committed with an open transaction = %v", got)
	}
	if err := p1.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if hw, lso := endOffsets(t, admin, "txn", false), endOffsets(t, admin, "txn", true); lso != hw {
		t.Fatalf("after commit: LSO %d, HW %d", lso, hw)
	}
	if got := consumeValues(t, ta, "txn", kgo.ReadCommitted(), 4); len(got) != 4 {
		t.Fatalf("read_committed after commit = %v", got)
	}

	// Fencing: a new producer with the same id bumps the epoch.
	if err := p1.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p1.ProduceSync(ctx, &kgo.Record{Value: []byte("z1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p2 := ta.client(t, kgo.TransactionalID("tx-1"), kgo.DefaultProduceTopic("txn"))
	transact(t, p2, true, "p2") // InitProducerId aborts p1's open transaction
	err := p1.EndTransaction(ctx, kgo.TryCommit)
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("fenced producer's EndTxn: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	if got, want := consumeValues(t, ta, "txn", kgo.ReadCommitted(), 5), []string{"c1", "c2", "c3", "o1", "p2"}; !equal(got, want) {
		t.Fatalf("read_committed after fencing = %v, want %v", got, want)
	}

	// A producer that never ends its transaction: aborted by timeout.
	p3 := ta.client(t, kgo.TransactionalID("tx-3"), kgo.DefaultProduceTopic("txn"), kgo.TransactionTimeout(time.Second))
	if err := p3.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p3.ProduceSync(ctx, &kgo.Record{Value: []byte("dead")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// No check that the LSO is held back here: with a one-second timeout
	// the coordinator may already have aborted it on a busy machine (an
	// open transaction holding the LSO is checked above). What matters is
	// that it ends, aborted: the LSO catches up and "dead" is never read.
	deadline := time.Now().Add(15 * time.Second)
	for {
		hw, lso := endOffsets(t, admin, "txn", false), endOffsets(t, admin, "txn", true)
		if lso == hw {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed-out transaction not aborted: LSO %d, HW %d", lso, hw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, want := consumeValues(t, ta, "txn", kgo.ReadCommitted(), 5), []string{"c1", "c2", "c3", "o1", "p2"}; !equal(got, want) {
		t.Fatalf("read_committed after timeout = %v, want %v", got, want)
	}
	if got := consumeValues(t, ta, "txn", kgo.ReadUncommitted(), 9); len(got) != 9 {
		t.Fatalf("read_uncommitted = %v, want 9 records", got)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sortStrings(s []string) { sort.Strings(s) }
