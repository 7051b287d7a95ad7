package torture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	eventsTopic     = "events" // idempotent producers write it
	copiedTopic     = "copied" // the transactional pipeline copies events here
	partitions      = 12
	producers       = 4
	keysPerProducer = 24
	groupMembers    = 3
	copiers         = 2
	consumerGroup   = "torture-group"
	copierGroup     = "torture-copiers"
	valueSize       = 100
	produceEvery    = 5 * time.Millisecond // per producer
)

// recID names one event record: producer, key of that producer, and the
// key's sequence number. The value carries it; nothing else does.
type recID struct{ prod, key, seq int32 }

func (r recID) String() string { return fmt.Sprintf("p%d/k%d/#%d", r.prod, r.key, r.seq) }

func eventKey(prod, key int32) []byte { return fmt.Appendf(nil, "p%d-k%d", prod, key) }

// eventPartition spreads each producer's keys over every partition.
func eventPartition(prod, key int32) int32 { return (key + prod*5) % partitions }

func eventValue(id recID) []byte {
	v := fmt.Appendf(nil, "e:%d:%d:%d:", id.prod, id.key, id.seq)
	return append(v, bytes.Repeat([]byte("."), valueSize-len(v))...)
}

// parseEvent reads an event value; ok is false if it is no event value.
func parseEvent(v []byte) (id recID, ok bool) {
	s, found := strings.CutPrefix(string(v), "e:")
	if !found {
		return id, false
	}
	f := strings.SplitN(s, ":", 4)
	if len(f) != 4 || strings.Trim(f[3], ".") != "" || len(v) != valueSize {
		return id, false
	}
	var n [3]int64
	for i := range n {
		x, err := strconv.ParseInt(f[i], 10, 32)
		if err != nil || x < 0 {
			return id, false
		}
		n[i] = x
	}
	return recID{int32(n[0]), int32(n[1]), int32(n[2])}, true
}

// txnID names one transaction attempt of a copier.
type txnID struct{ copier, attempt int32 }

func (x txnID) String() string { return fmt.Sprintf("%d.%d", x.copier, x.attempt) }

// copyID names one record of the copied topic: the attempt that wrote it
// and the event it copies.
type copyID struct {
	txn txnID
	ev  recID
}

func copyValue(x txnID, event []byte) []byte {
	return append(fmt.Appendf(nil, "c:%d.%d:", x.copier, x.attempt), event...)
}

func parseCopy(v []byte) (id copyID, ok bool) {
	s, found := strings.CutPrefix(string(v), "c:")
	if !found {
		return id, false
	}
	head, event, found := strings.Cut(s, ":")
	if !found {
		return id, false
	}
	c, a, found := strings.Cut(head, ".")
	if !found {
		return id, false
	}
	ci, err1 := strconv.ParseInt(c, 10, 32)
	ai, err2 := strconv.ParseInt(a, 10, 32)
	ev, ok := parseEvent([]byte(event))
	if err1 != nil || err2 != nil || !ok {
		return id, false
	}
	return copyID{txnID{int32(ci), int32(ai)}, ev}, true
}

type ackAt struct {
	partition int32
	offset    int64
}

type txnOutcome int

const (
	txnOpen      txnOutcome = iota
	txnCommitted            // End returned committed
	txnAborted              // End returned not committed and no error: the abort succeeded
	txnUnknown              // End returned an error
)

type txnRecord struct {
	outcome    txnOutcome
	deliberate bool // aborted on purpose
	records    int  // records polled and produced in it
	produced   int  // produces acknowledged
}

func (r *txnRecord) String() string {
	outcome := [...]string{"open", "committed", "aborted", "unknown"}[r.outcome]
	if r.deliberate {
		outcome += " deliberately"
	}
	return fmt.Sprintf("%s, %d records", outcome, r.records)
}

// ledger is what the clients were told: every event sent and how its
// produce ended, every transaction attempt and how it ended, what the group
// consumed and what the read_committed reader saw while the faults ran.
type ledger struct {
	mu            sync.Mutex
	sent          map[[2]int32]int32 // (producer, key) -> sequence numbers used
	acked         map[recID]ackAt
	indeterminate map[recID]string // the produce failed: may or may not be in the log
	txns          map[txnID]*txnRecord
	consumed      map[int32]map[int64]bool // group: partition -> offsets received
	rcSeen        map[copyID]ackAt         // read_committed reader, live

	produceErrs, pollErrs, commitErrs, endErrs, sessions atomic.Int64
}

func newLedger() *ledger {
	return &ledger{
		sent:          make(map[[2]int32]int32),
		acked:         make(map[recID]ackAt),
		indeterminate: make(map[recID]string),
		txns:          make(map[txnID]*txnRecord),
		consumed:      make(map[int32]map[int64]bool),
		rcSeen:        make(map[copyID]ackAt),
	}
}

func (l *ledger) next(prod, key int32) recID {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]int32{prod, key}
	seq := l.sent[k]
	l.sent[k] = seq + 1
	return recID{prod, key, seq}
}

// workload runs the clients against the cluster until stopped.
type workload struct {
	c    *cluster
	l    *ledger
	seed uint64
	logf func(format string, args ...any)

	wg sync.WaitGroup
}

func (w *workload) clientOpts(id string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(w.c.seeds()...), kgo.ClientID(id),
		kgo.RequestTimeoutOverhead(15 * time.Second),
		kgo.RetryTimeout(2 * time.Minute),
	}
}

// produce runs one idempotent producer, seeded with one agent only, until
// stop is closed; then it waits for what it sent to be acknowledged or
// fail, and returns.
func (w *workload) produce(prod int32, seed string, stop <-chan struct{}) error {
	rng := rand.New(rand.NewPCG(w.seed, uint64(prod)))
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.ClientID(fmt.Sprintf("torture-producer-%d", prod)),
		kgo.DefaultProduceTopic(eventsTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(2000),
		kgo.RecordDeliveryTimeout(2*time.Minute), kgo.RequestTimeoutOverhead(15*time.Second))
	if err != nil {
		return err
	}
	tick := time.NewTicker(produceEvery)
	defer tick.Stop()
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-tick.C:
		}
		key := int32(rng.IntN(keysPerProducer))
		id := w.l.next(prod, key)
		rec := &kgo.Record{Key: eventKey(prod, key), Value: eventValue(id), Partition: eventPartition(prod, key)}
		cl.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
			w.l.mu.Lock()
			defer w.l.mu.Unlock()
			if err != nil {
				w.l.produceErrs.Add(1)
				w.l.indeterminate[id] = err.Error()
				return
			}
			w.l.acked[id] = ackAt{r.Partition, r.Offset}
		})
	}
	fctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := cl.Flush(fctx); err != nil {
		w.logf("producer %d: flush: %v", prod, err)
	}
	cl.Close() // fails whatever is still buffered: indeterminate
	return nil
}

// consume runs one member of the consumer group, committing explicitly
// after each poll, until ctx ends.
func (w *workload) consume(ctx context.Context, member int) error {
	cl, err := kgo.NewClient(append(w.clientOpts(fmt.Sprintf("torture-member-%d", member)),
		kgo.ConsumerGroup(consumerGroup), kgo.ConsumeTopics(eventsTopic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(time.Second))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				w.l.pollErrs.Add(1)
			}
		})
		if fs.NumRecords() == 0 {
			continue
		}
		w.l.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			m := w.l.consumed[r.Partition]
			if m == nil {
				m = make(map[int64]bool)
				w.l.consumed[r.Partition] = m
			}
			m[r.Offset] = true
		})
		w.l.mu.Unlock()
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := cl.CommitUncommittedOffsets(cctx); err != nil {
			w.l.commitErrs.Add(1)
		}
		cancel()
	}
	return nil
}

// copy runs one copier of the transactional pipeline until ctx ends: a
// GroupTransactSession reading events and writing them to copied, a
// transaction per poll, some aborted on purpose. A session whose End fails
// is closed and replaced, as the franz-go documentation prescribes.
func (w *workload) copy(ctx context.Context, copier int32) {
	rng := rand.New(rand.NewPCG(w.seed, 1000+uint64(copier)))
	var attempt int32
	for ctx.Err() == nil {
		sess, err := kgo.NewGroupTransactSession(append(w.clientOpts(fmt.Sprintf("torture-copier-%d", copier)),
			kgo.TransactionalID(fmt.Sprintf("torture-copier-%d", copier)), kgo.TransactionTimeout(30*time.Second),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordDeliveryTimeout(2*time.Minute),
			kgo.ConsumerGroup(copierGroup), kgo.ConsumeTopics(eventsTopic),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(time.Second))...)
		if err != nil {
			w.logf("copier %d: new session: %v", copier, err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		w.l.sessions.Add(1)
		w.copyLoop(ctx, sess, copier, &attempt, rng)
		sess.Close()
	}
}

func (w *workload) copyLoop(ctx context.Context, sess *kgo.GroupTransactSession, copier int32, attempt *int32, rng *rand.Rand) {
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := sess.PollRecords(pctx, 500)
		cancel()
		if fs.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				w.l.pollErrs.Add(1)
			}
		})
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			w.logf("copier %d: begin: %v", copier, err)
			return
		}
		*attempt++
		id := txnID{copier, *attempt}
		rec := &txnRecord{records: fs.NumRecords(), deliberate: rng.IntN(5) == 0}
		w.l.mu.Lock()
		w.l.txns[id] = rec
		w.l.mu.Unlock()
		var produced atomic.Int64
		var produceErr atomic.Pointer[error]
		var wg sync.WaitGroup
		fs.EachRecord(func(r *kgo.Record) {
			wg.Add(1)
			sess.Produce(context.Background(), &kgo.Record{Topic: copiedTopic, Partition: r.Partition, Key: r.Key, Value: copyValue(id, r.Value)},
				func(_ *kgo.Record, err error) {
					defer wg.Done()
					if err == nil {
						produced.Add(1)
					} else {
						produceErr.CompareAndSwap(nil, &err)
					}
				})
		})
		// Every produce is answered before the transaction ends, and it
		// commits only if all of them succeeded: franz-go's documented
		// exactly-once pattern (AbortingFirstErrPromise). The client does
		// not refuse the commit itself: after a failed transactional
		// produce it reloads its producer id, which bumps the epoch and
		// aborts what the transaction wrote, and the offset commit that
		// follows begins a new transaction that commits the offsets alone,
		// on Kafka as on Silt. (Deliberate aborts flush too, so that
		// read_committed readers have aborted records to not see.)
		fctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		flushErr := sess.Client().Flush(fctx)
		cancel()
		if flushErr == nil {
			wg.Wait()
		}
		end := kgo.TryCommit
		switch {
		case rec.deliberate:
			end = kgo.TryAbort
		case flushErr != nil:
			end = kgo.TryAbort
			w.logf("copier %d: transaction %s aborts: flush: %v", copier, id, flushErr)
		case produceErr.Load() != nil:
			end = kgo.TryAbort
			w.logf("copier %d: transaction %s aborts: %d of %d produces failed, the first with: %v",
				copier, id, int64(rec.records)-produced.Load(), rec.records, *produceErr.Load())
		}
		ectx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		committed, err := sess.End(ectx, end)
		cancel()
		wg.Wait()
		w.l.mu.Lock()
		rec.produced = int(produced.Load())
		switch {
		case err != nil:
			rec.outcome = txnUnknown
		case committed:
			rec.outcome = txnCommitted
		default:
			rec.outcome = txnAborted
		}
		w.l.mu.Unlock()
		if err != nil {
			w.l.endErrs.Add(1)
			w.logf("copier %d: end transaction %s: %v", copier, id, err)
			return
		}
	}
}

// readCommitted tails copied with read_committed until ctx ends,
// recording what it sees.
func (w *workload) readCommitted(ctx context.Context) error {
	cl, err := kgo.NewClient(append(w.clientOpts("torture-rc-reader"),
		kgo.ConsumeTopics(copiedTopic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(time.Second))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		w.l.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			id, ok := parseCopy(r.Value)
			if !ok {
				w.c.v.add("phantom", "read_committed reader: %s/%d@%d holds %q, which no copier wrote", r.Topic, r.Partition, r.Offset, r.Value)
				return
			}
			if _, dup := w.l.rcSeen[id]; !dup {
				w.l.rcSeen[id] = ackAt{r.Partition, r.Offset}
			}
		})
		w.l.mu.Unlock()
	}
	return nil
}

// watchCommitted polls both groups' committed offsets and reports any that
// move backwards.
func (w *workload) watchCommitted(ctx context.Context) {
	cl, err := kgo.NewClient(w.clientOpts("torture-offset-watcher")...)
	if err != nil {
		w.c.v.add("harness", "offset watcher: %v", err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	start := time.Now()
	last := map[string]map[int32]int64{consumerGroup: {}, copierGroup: {}}
	reported := make(map[string]bool) // a regression is reported once, not at every poll
	for ctx.Err() == nil {
		for group, seen := range last {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			offs, err := adm.FetchOffsets(qctx, group)
			cancel()
			if err != nil {
				continue
			}
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Err != nil || o.Topic != eventsTopic {
					return
				}
				key := fmt.Sprintf("%s/%d/%d", group, o.Partition, o.At)
				if prev, ok := seen[o.Partition]; ok && o.At < prev && !reported[key] {
					reported[key] = true
					w.c.v.add("commit-back", "group %s %s/%d: committed offset %d after %d, at t+%s",
						group, o.Topic, o.Partition, o.At, prev, time.Since(start).Round(time.Millisecond))
				}
				seen[o.Partition] = max(seen[o.Partition], o.At)
			})
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}
