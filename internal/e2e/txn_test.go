package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/poll"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// stableOffsets lists a topic's last stable offsets (read_committed) and
// high watermarks (read_uncommitted) per partition.
func stableOffsets(ctx context.Context, adm *kadm.Client, topic string) (lso, hwm map[int32]int64, err error) {
	committed, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("list committed offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets: %w", err)
	}
	if lso, err = offsetsOf(committed, topic); err != nil {
		return nil, nil, err
	}
	if hwm, err = offsetsOf(ends, topic); err != nil {
		return nil, nil, err
	}
	return lso, hwm, nil
}

func offsetsOf(l kadm.ListedOffsets, topic string) (map[int32]int64, error) {
	out := make(map[int32]int64)
	for _, o := range l[topic] {
		if o.Err != nil {
			return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	}
	return out, nil
}

// waitStable waits until no transaction is open on any partition of topic:
// the last stable offset equals the high watermark everywhere.
func waitStable(t *testing.T, adm *kadm.Client, topic string, timeout time.Duration) map[int32]int64 {
	t.Helper()
	var lso, hwm map[int32]int64
	var err error
	poll.Within(t, "the last stable offset of "+topic+" to reach the high watermark", timeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lso, hwm, err = stableOffsets(ctx, adm, topic)
		if err != nil || len(hwm) == 0 {
			return false
		}
		for p, h := range hwm {
			if lso[p] != h {
				return false
			}
		}
		return true
	})
	return hwm
}

// readToEnd reads topic from the start through seed with the given
// isolation until every partition has been read up to ends (control records
// are kept so that a partition ending in a commit or abort marker is known
// to be finished). It returns the data records' values and how many control
// records it saw.
func readToEnd(t *testing.T, seed, clientID, topic string, iso kgo.IsolationLevel, ends map[int32]int64) (values []string, control int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.ClientID(clientID), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	next := make(map[int32]int64)
	done := func() bool {
		for p, e := range ends {
			if next[p] < e {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for !done() && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Logf("fetch %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
			if r.Attrs.IsControl() {
				control++
				return
			}
			values = append(values, string(r.Value))
		})
	}
	if !done() {
		t.Fatalf("read %s to %v, want %v", topic, next, ends)
	}
	return values, control
}

// agentIndex returns the index in addrs of host:port, or -1.
func agentIndex(addrs []string, host string, port int32) int {
	hp := net.JoinHostPort(host, strconv.Itoa(int(port)))
	return slices.Index(addrs, hp)
}

// TestTransactionalPipelineSurvivesSIGKILL: three agents; franz-go's
// GroupTransactSession copies a 6-partition topic to another, a few hundred
// records per transaction, while the agent coordinating its transactional
// id is SIGKILLed and restarted. Once the group's committed offsets reach the
// end of the input, the output read with read_committed is exactly the
// transformed input (no loss, no duplicates), and read_uncommitted sees at
// least every acknowledged record of the aborted attempts as well.
func TestTransactionalPipelineSurvivesSIGKILL(t *testing.T) {
	c := startSiltCluster(t, 3)
	const partitions, total = 6, 20000
	const txnID, group = "txn-copier", "txn-copiers"
	createTopic(t, c.addrs[0], "txn-in", partitions)
	createTopic(t, c.addrs[0], "txn-out", partitions)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Fill the input.
	want := make(map[string]int, total)
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.addrs[0]), kgo.DefaultProduceTopic("txn-in"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var pwg sync.WaitGroup
	var perr atomic.Value
	for i := 0; i < total; i++ {
		p, seq := int32(i%partitions), i/partitions
		v := fmt.Sprintf("in-%d-%05d", p, seq)
		want["out-"+v]++
		pwg.Add(1)
		prod.Produce(ctx, &kgo.Record{Partition: p, Value: []byte(v)}, func(_ *kgo.Record, err error) {
			defer pwg.Done()
			if err != nil {
				perr.Store(err)
			}
		})
	}
	pwg.Wait()
	prod.Close()
	if err := perr.Load(); err != nil {
		t.Fatalf("fill the input: %v", err)
	}

	admCl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	inEnds := waitStable(t, adm, "txn-in", time.Minute)

	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(c.addrs...),
		kgo.TransactionalID(txnID), kgo.TransactionTimeout(10*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics("txn-in"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	// SIGKILL the agent coordinating the transactional id (and the group:
	// both hash the same way) half way through, while a transaction is
	// open, and start it again a second later.
	var copied atomic.Int64
	var inTxn atomic.Bool
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		for (copied.Load() < total/2 || !inTxn.Load()) && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		if ctx.Err() != nil {
			return
		}
		victim := 1
		fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
		co := adm.FindTxnCoordinators(fctx, txnID)[txnID]
		fcancel()
		if co.Err == nil {
			if i := agentIndex(c.addrs, co.Host, co.Port); i >= 0 {
				victim = i
			}
		}
		c.procs[victim].kill()
		t.Logf("SIGKILLed agent-%d (transaction coordinator: %v) in a transaction with %d records copied", victim, co.Err == nil, copied.Load())
		time.Sleep(time.Second)
		c.procs[victim].start()
		t.Logf("restarted agent-%d", victim)
	}()

	start := time.Now()
	var commits, aborts, endErrs, pollErrs, abortedAcked, attempts int
	lastCheck := time.Now()
	reachedEnd := func() bool {
		qctx, qcancel := context.WithTimeout(ctx, 3*time.Second)
		defer qcancel()
		offs, err := adm.FetchOffsets(qctx, group)
		if err != nil {
			return false
		}
		for p, e := range inEnds {
			o, ok := offs.Lookup("txn-in", p)
			if !ok || o.Err != nil || o.At < e {
				return false
			}
		}
		return true
	}
	for ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := sess.PollRecords(pctx, 300)
		pcancel()
		if fs.IsClientClosed() {
			t.Fatal("transactional session closed")
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				pollErrs++
				t.Logf("poll %s/%d: %v", topic, p, err)
			}
		})
		if err := sess.Begin(); err != nil {
			t.Fatalf("begin transaction: %v", err) // only when already in one
		}
		inTxn.Store(true)
		var acked atomic.Int64
		var wg sync.WaitGroup
		fs.EachRecord(func(r *kgo.Record) {
			wg.Add(1)
			sess.Produce(ctx, &kgo.Record{Topic: "txn-out", Partition: r.Partition, Value: append([]byte("out-"), r.Value...)},
				func(_ *kgo.Record, err error) {
					defer wg.Done()
					if err == nil {
						acked.Add(1)
					}
				})
		})
		// One attempt is aborted on purpose (as an application whose
		// transform failed would), so read_uncommitted readers must see
		// aborted records and read_committed ones must not; the session
		// re-consumes its records from the committed offsets.
		attempts++
		end := kgo.TryCommit
		if attempts == 5 && fs.NumRecords() > 0 {
			end = kgo.TryAbort
			// Write the records before aborting, so the log holds the
			// aborted attempt's data and its abort marker.
			if err := sess.Client().Flush(ctx); err != nil {
				t.Logf("flush before the deliberate abort: %v", err)
			}
		} else if attempts == 5 {
			attempts-- // nothing polled: abort the next attempt instead
		}
		committed, err := sess.End(ctx, end)
		inTxn.Store(false)
		wg.Wait()
		switch {
		case err != nil:
			endErrs++
			t.Logf("end transaction of %d records: %v", fs.NumRecords(), err)
		case committed:
			commits++
			copied.Add(int64(fs.NumRecords()))
		default:
			aborts++
			abortedAcked += int(acked.Load())
		}
		if time.Since(lastCheck) > 250*time.Millisecond || fs.NumRecords() == 0 {
			lastCheck = time.Now()
			if reachedEnd() {
				break
			}
		}
	}
	<-killed
	if ctx.Err() != nil {
		t.Fatalf("the group's committed offsets did not reach the end of the input %v in time (%d commits, %d aborts, %d end errors)",
			inEnds, commits, aborts, endErrs)
	}
	t.Logf("pipeline copied %d input records in %v: %d transactions committed, %d aborted (%d acknowledged records in them), %d ended with an error, %d poll errors",
		total, time.Since(start).Round(time.Millisecond), commits, aborts, abortedAcked, endErrs, pollErrs)

	outEnds := waitStable(t, adm, "txn-out", time.Minute)
	got, markers := readToEnd(t, c.addrs[2], "txn-check,silt_az=z2", "txn-out", kgo.ReadCommitted(), outEnds)
	counts := make(map[string]int, len(got))
	for _, v := range got {
		counts[v]++
	}
	var missing, dups int
	var exMissing, exDup string
	for v := range want {
		if counts[v] == 0 {
			missing++
			exMissing = v
		}
	}
	for v, n := range counts {
		if want[v] == 0 {
			t.Fatalf("read_committed output holds %q, which is no transformed input", v)
		}
		if n > 1 {
			dups += n - 1
			exDup = v
		}
	}
	if missing > 0 || dups > 0 {
		t.Fatalf("read_committed output: %d records, %d inputs missing (e.g. %q), %d duplicates (e.g. %q)",
			len(got), missing, exMissing, dups, exDup)
	}

	all, _ := readToEnd(t, c.addrs[1], "txn-check,silt_az=z1", "txn-out", kgo.ReadUncommitted(), outEnds)
	t.Logf("output: read_committed %d records (%d control records), read_uncommitted %d records: %d from aborted attempts",
		len(got), markers, len(all), len(all)-len(got))
	if len(all) < len(got)+abortedAcked {
		t.Fatalf("read_uncommitted saw %d records, want at least %d committed + %d acknowledged in aborted transactions",
			len(all), len(got), abortedAcked)
	}
	if aborts == 0 || abortedAcked == 0 || len(all) <= len(got) {
		t.Fatalf("%d aborted transactions with %d acknowledged records, read_uncommitted %d vs read_committed %d: the deliberate abort left no trace",
			aborts, abortedAcked, len(all), len(got))
	}
}

// TestAbortedTransactionNeverVisible: one transactional producer aborts, a
// second one writes and dies without ending its transaction (a short
// transaction timeout), a third commits after both. A read_committed
// consumer on another agent sees only the committed records, and once the
// coordinator has aborted the timed-out transaction the last stable offset
// of every partition reaches the high watermark.
func TestAbortedTransactionNeverVisible(t *testing.T) {
	c := startSiltCluster(t, 2)
	const topic, partitions, perTxn = "txn-visibility", 3, 30
	createTopic(t, c.addrs[0], topic, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	producer := func(id string, timeout time.Duration) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs[0]), kgo.ClientID("txn-producer,silt_az=z0"),
			kgo.TransactionalID(id), kgo.TransactionTimeout(timeout),
			kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	// write begins a transaction and writes perTxn records prefix-<i>; it
	// returns the first offset written in each partition.
	write := func(cl *kgo.Client, prefix string) map[int32]int64 {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatalf("begin %s transaction: %v", prefix, err)
		}
		var recs []*kgo.Record
		for i := 0; i < perTxn; i++ {
			recs = append(recs, &kgo.Record{Partition: int32(i % partitions), Value: []byte(fmt.Sprintf("%s-%02d", prefix, i))})
		}
		res := cl.ProduceSync(ctx, recs...)
		if err := res.FirstErr(); err != nil {
			t.Fatalf("produce %s records: %v", prefix, err)
		}
		first := make(map[int32]int64)
		for _, r := range res {
			if o, ok := first[r.Record.Partition]; !ok || r.Record.Offset < o {
				first[r.Record.Partition] = r.Record.Offset
			}
		}
		return first
	}

	aborter := producer("txn-aborter", time.Minute)
	defer aborter.Close()
	write(aborter, "aborted")
	if err := aborter.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatalf("abort: %v", err)
	}

	const timeout = 5 * time.Second
	dier := producer("txn-dier", timeout)
	dierFirst := write(dier, "timedout")
	begun := time.Now() // just after the transaction began
	dier.Close()        // gone without EndTransaction, as if its process died

	committer := producer("txn-committer", time.Minute)
	defer committer.Close()
	write(committer, "committed")
	if err := committer.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}

	admCl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs[1]))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)

	// While the dead producer's transaction is open, the LSO stays at its
	// first record: nothing after it, committed or not, is stable yet.
	lso, hwm, err := stableOffsets(ctx, adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(begun); elapsed < timeout-time.Second {
		for p, first := range dierFirst {
			if lso[p] > first {
				t.Fatalf("partition %d: LSO %d past the first record %d of a transaction still open (hwm %d, %v after it began)",
					p, lso[p], first, hwm[p], elapsed)
			}
		}
		t.Logf("with the dead producer's transaction open: LSO %v, high watermarks %v", lso, hwm)
	} else {
		t.Logf("checking the open transaction's LSO took %v, too close to its %v timeout; not checked", elapsed, timeout)
	}

	ends := waitStable(t, adm, topic, 30*time.Second)
	t.Logf("LSO reached the high watermark %v %v after the dead producer's records were written (timeout %v)",
		ends, time.Since(begun).Round(time.Millisecond), timeout)
	txns, err := adm.DescribeTransactions(ctx, "txn-dier")
	if err != nil {
		t.Fatalf("describe transactions: %v", err)
	}
	if d, ok := txns["txn-dier"]; !ok || d.State != "CompleteAbort" {
		t.Fatalf("the dead producer's transaction: %+v, want state CompleteAbort", d)
	}

	var want []string
	for i := 0; i < perTxn; i++ {
		want = append(want, fmt.Sprintf("committed-%02d", i))
	}
	got, markers := readToEnd(t, c.addrs[1], "txn-reader,silt_az=z1", topic, kgo.ReadCommitted(), ends)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("read_committed on agent-1 read %d records %v, want exactly the %d committed ones", len(got), got, len(want))
	}
	all, _ := readToEnd(t, c.addrs[1], "txn-reader,silt_az=z1", topic, kgo.ReadUncommitted(), ends)
	if len(all) != 3*perTxn {
		t.Fatalf("read_uncommitted read %d records, want %d (aborted, timed out and committed)", len(all), 3*perTxn)
	}
	t.Logf("read_committed: %d records and %d control records; read_uncommitted: %d records", len(got), markers, len(all))
}
