package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/siltstream/silt/ingest"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/segment"
)

// txnSweepInterval is how often a coordinator looks for expired and
// half-finished transactions.
const txnSweepInterval = time.Second

// prepareGrace is how long a Prepare* state may sit before the coordinator
// assumes its writer died and finishes it.
const prepareGrace = 5 * time.Second

// Store is what the coordinator needs from the metastore.
type Store interface {
	metastore.TxnStore
	AllocateProducerID(ctx context.Context) (int64, error)
}

// Markers is the write pipeline: markers go the way of produced data.
type Markers interface {
	Submit(ctx context.Context, batches []ingest.Batch) (*ingest.Pending, time.Duration, error)
}

// Topics resolves topic names (from the agent's cache).
type Topics interface {
	// Resolve returns a topic's id and partition count, or an error
	// wrapping metastore.ErrUnknownTopic.
	Resolve(ctx context.Context, name string) (id metastore.TopicID, partitions int32, err error)
}

// Config is what a Coordinator is built from.
type Config struct {
	Store   Store
	Markers Markers
	Topics  Topics
	// IsCoordinator reports whether this agent coordinates a transactional
	// id (or a group, for TxnOffsetCommit) in its current view.
	IsCoordinator func(key string) bool
	Logger        *slog.Logger
}

// Coordinator is the transaction coordinator of one agent: it serves the
// transactional ids placement gives this agent.
type Coordinator struct {
	store         Store
	markers       Markers
	topics        Topics
	isCoordinator func(string) bool
	log           *slog.Logger

	mu       sync.Mutex
	locks    map[string]*sync.Mutex // per transactional id, serializes this agent's work on it
	dangling map[danglingKey]int    // dangling-write checks done per completed transaction
	claims   map[string]int64       // coordinator epochs this agent holds (metastore.TxnStore.ClaimTxn)
}

// New returns a Coordinator; Run starts its sweeps.
func New(cfg Config) *Coordinator {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Coordinator{
		store: cfg.Store, markers: cfg.Markers, topics: cfg.Topics,
		isCoordinator: cfg.IsCoordinator, log: cfg.Logger.With("component", "txn"),
		locks: make(map[string]*sync.Mutex), claims: make(map[string]int64),
	}
}

// lock serializes this agent's operations on one transactional id.
func (c *Coordinator) lock(id string) func() {
	c.mu.Lock()
	l, ok := c.locks[id]
	if !ok {
		l = &sync.Mutex{}
		c.locks[id] = l
	}
	c.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// put saves next over prev, fenced by next's claim (loadClaimed); a lost
// compare-and-set is the retriable CONCURRENT_TRANSACTIONS, a superseded
// claim NOT_COORDINATOR (the client finds the new coordinator).
func (c *Coordinator) put(ctx context.Context, next metastore.Txn, prev *metastore.Txn) error {
	err := c.store.PutTxn(ctx, next, prev)
	if errors.Is(err, metastore.ErrTxnConflict) {
		return kerr.ConcurrentTransactions
	}
	if errors.Is(err, metastore.ErrCoordinatorMoved) {
		c.mu.Lock()
		if c.claims[next.TransactionalID] == next.CoordinatorEpoch {
			delete(c.claims, next.TransactionalID)
		}
		c.mu.Unlock()
		c.log.Info("transactional id claimed by another coordinator", "transactional_id", next.TransactionalID)
		return kerr.NotCoordinator
	}
	if err != nil {
		c.log.Warn("save transaction", "transactional_id", next.TransactionalID, "err", err)
		return kerr.CoordinatorNotAvailable
	}
	return nil
}

// loadClaimed is load for a change: it first makes this agent the id's
// coordinator of record, unless it already is (metastore.TxnStore.ClaimTxn),
// and stamps the claim on the transaction read, so that put refuses the
// change once another agent has claimed the id since. Claiming before
// reading means whatever a previous coordinator still writes is either in
// what we read or refused. The caller holds the id's lock.
func (c *Coordinator) loadClaimed(ctx context.Context, id string) (metastore.Txn, bool, error) {
	c.mu.Lock()
	epoch, ok := c.claims[id]
	c.mu.Unlock()
	if !ok {
		var err error
		if epoch, err = c.store.ClaimTxn(ctx, id); err != nil {
			c.log.Warn("claim transactional id", "transactional_id", id, "err", err)
			return metastore.Txn{}, false, kerr.CoordinatorNotAvailable
		}
		c.mu.Lock()
		c.claims[id] = epoch
		c.mu.Unlock()
	}
	t, found, err := c.load(ctx, id)
	if !found {
		t.TransactionalID = id
	}
	t.CoordinatorEpoch = epoch
	return t, found, err
}

// load reads a transaction; unknown ids give (zero, false, nil).
func (c *Coordinator) load(ctx context.Context, id string) (metastore.Txn, bool, error) {
	t, ok, err := c.store.Txn(ctx, id)
	if err != nil {
		c.log.Warn("load transaction", "transactional_id", id, "err", err)
		return t, false, kerr.CoordinatorNotAvailable
	}
	return t, ok, nil
}

// checkProducer verifies a request's producer id and epoch against t.
func checkProducer(t metastore.Txn, pid int64, epoch int16) error {
	switch {
	case pid != t.ProducerID:
		return kerr.InvalidProducerIDMapping
	case epoch < t.Epoch:
		return kerr.ProducerFenced
	case epoch > t.Epoch:
		return kerr.InvalidProducerEpoch
	}
	return nil
}

// InitProducer answers InitProducerId for a transactional id: a producer
// id is allocated once, and every call bumps the epoch, after completing
// or aborting what the previous producer left.
func (c *Coordinator) InitProducer(ctx context.Context, id string, timeoutMs int32, pid int64, epoch int16) (metastore.Txn, error) {
	defer c.lock(id)()
	t, ok, err := c.loadClaimed(ctx, id)
	if err != nil {
		return t, err
	}
	if !ok {
		npid, err := c.store.AllocateProducerID(ctx)
		if err != nil {
			return t, kerr.CoordinatorNotAvailable
		}
		t = metastore.Txn{TransactionalID: id, ProducerID: npid, State: metastore.TxnEmpty, TimeoutMs: timeoutMs, CoordinatorEpoch: t.CoordinatorEpoch}
		return t, c.put(ctx, t, nil)
	}
	if pid >= 0 && (pid != t.ProducerID || epoch != t.Epoch) {
		// KIP-360: only the current producer may bump its own epoch.
		return t, kerr.ProducerFenced
	}
	if t, err = c.finish(ctx, t, true); err != nil {
		return t, err
	}
	next := t
	next.State, next.Partitions, next.Groups, next.Offsets, next.StartedAt = metastore.TxnEmpty, nil, nil, nil, time.Time{}
	next.TimeoutMs = timeoutMs
	if next.Epoch >= math.MaxInt16-1 {
		npid, err := c.store.AllocateProducerID(ctx)
		if err != nil {
			return t, kerr.CoordinatorNotAvailable
		}
		next.ProducerID, next.Epoch = npid, 0
	} else {
		next.Epoch++
	}
	return next, c.put(ctx, next, &t)
}

// finish completes t if it is in the middle of a transaction: a Prepare*
// state is completed; an Ongoing one is aborted with a bumped epoch if
// abortOngoing is set. The caller holds the id's lock.
func (c *Coordinator) finish(ctx context.Context, t metastore.Txn, abortOngoing bool) (metastore.Txn, error) {
	switch t.State {
	case metastore.TxnOngoing:
		if !abortOngoing {
			return t, nil
		}
		next := t
		next.State = metastore.TxnPrepareAbort
		if next.Epoch < math.MaxInt16-1 {
			next.Epoch++ // fences the producer's in-flight batches
		}
		if err := c.put(ctx, next, &t); err != nil {
			return t, err
		}
		return c.complete(ctx, next)
	case metastore.TxnPrepareCommit, metastore.TxnPrepareAbort:
		return c.complete(ctx, t)
	}
	return t, nil
}

// complete writes the markers of a Prepare* transaction, applies its
// offsets if it commits, and saves its Complete* state.
func (c *Coordinator) complete(ctx context.Context, t metastore.Txn) (metastore.Txn, error) {
	commit := t.State == metastore.TxnPrepareCommit
	if err := c.writeMarkers(ctx, t, commit); err != nil {
		c.log.Warn("write transaction markers", "transactional_id", t.TransactionalID, "err", err)
		return t, kerr.CoordinatorNotAvailable
	}
	next := t
	next.State = metastore.TxnCompleteAbort
	if commit {
		next.State = metastore.TxnCompleteCommit
	}
	// Partitions stay, for the dangling-write checks (txn_dangling.go); the
	// next transaction starts with none. Saving CompleteCommit applies the
	// offsets in the same store transaction (metastore.TxnStore.PutTxn).
	next.Groups, next.Offsets, next.StartedAt = nil, nil, time.Time{}
	return next, c.put(ctx, next, &t)
}

// writeMarkers appends a control batch to every partition of t through the
// write pipeline and waits until all are committed.
func (c *Coordinator) writeMarkers(ctx context.Context, t metastore.Txn, commit bool) error {
	if len(t.Partitions) == 0 {
		return nil
	}
	marker := segment.ControlBatch(t.ProducerID, t.Epoch, commit, 0, time.Now().UnixMilli())
	_, _, hdr, err := segment.NextBatch(marker)
	if err != nil {
		return fmt.Errorf("build marker: %w", err)
	}
	var batches []ingest.Batch
	for _, tp := range t.Partitions {
		id, n, err := c.topics.Resolve(ctx, tp.Topic)
		if errors.Is(err, metastore.ErrUnknownTopic) || err == nil && (tp.Partition < 0 || tp.Partition >= n) {
			continue // deleted since: nothing to mark
		}
		if err != nil {
			return err
		}
		data := append([]byte(nil), marker...)
		batches = append(batches, ingest.Batch{TP: metastore.TopicPartition{Topic: id, Partition: tp.Partition}, TopicName: tp.Topic, Data: data, Header: hdr, Abort: !commit})
	}
	if len(batches) == 0 {
		return nil
	}
	pending, _, err := c.markers.Submit(ctx, batches)
	if err != nil {
		return err
	}
	if err := pending.Wait(ctx); err != nil {
		return err
	}
	for _, r := range pending.Results() {
		if r.Err != nil && !errors.Is(r.Err, metastore.ErrUnknownTopic) {
			return r.Err
		}
	}
	return nil
}

// Run aborts expired transactions and finishes abandoned Prepare* states
// of the ids this agent coordinates, until ctx ends.
func (c *Coordinator) Run(ctx context.Context) {
	tick := time.NewTicker(txnSweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.sweep(ctx)
	}
}

func (c *Coordinator) sweep(ctx context.Context) {
	all, err := c.store.Txns(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("list transactions", "err", err)
		}
		return
	}
	now := time.Now()
	for _, t := range all {
		if !c.isCoordinator(t.TransactionalID) {
			c.mu.Lock()
			delete(c.claims, t.TransactionalID) // claimed again if it comes back here
			c.mu.Unlock()
			continue
		}
		c.checkDangling(ctx, t, now)
		expired := t.State == metastore.TxnOngoing && now.Sub(t.StartedAt) > time.Duration(t.TimeoutMs)*time.Millisecond
		stuck := (t.State == metastore.TxnPrepareCommit || t.State == metastore.TxnPrepareAbort) && now.Sub(t.UpdatedAt) > prepareGrace
		if !expired && !stuck {
			continue
		}
		func() {
			defer c.lock(t.TransactionalID)()
			cur, ok, err := c.loadClaimed(ctx, t.TransactionalID)
			if err != nil || !ok || cur.State != t.State || cur.Epoch != t.Epoch || cur.ProducerID != t.ProducerID ||
				!cur.StartedAt.Equal(t.StartedAt) || !cur.UpdatedAt.Equal(t.UpdatedAt) {
				return // moved meanwhile
			}
			if _, err := c.finish(ctx, cur, true); err != nil && ctx.Err() == nil {
				c.log.Warn("finish transaction", "transactional_id", t.TransactionalID, "state", t.State, "err", err)
				return
			}
			c.log.Info("finished transaction", "transactional_id", t.TransactionalID, "state", t.State, "expired", expired)
		}()
	}
}
