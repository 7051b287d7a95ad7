package partition_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/partition"
)

// pausingStore lets a test run something while a Partitions read is in
// flight: after the real read (the snapshot is taken), it signals taken and
// waits for release before returning.
type pausingStore struct {
	partition.Store
	mu      sync.Mutex
	armed   bool
	taken   chan struct{}
	release chan struct{}
}

func (s *pausingStore) arm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed, s.taken, s.release = true, make(chan struct{}), make(chan struct{})
}

func (s *pausingStore) Partitions(ctx context.Context, id metastore.TopicID) ([]metastore.PartitionState, error) {
	states, err := s.Store.Partitions(ctx, id)
	s.mu.Lock()
	armed, taken, release := s.armed, s.taken, s.release
	s.armed = false
	s.mu.Unlock()
	if armed {
		close(taken)
		<-release
	}
	return states, err
}

// readSide is a second view (another agent's read side) over e's store,
// whose store reads can be paused.
func readSide(t *testing.T, e *env) (*partition.Topics, *partition.Partition, *pausingStore) {
	t.Helper()
	ps := &pausingStore{Store: e.store}
	ts := partition.NewTopics(ps)
	topic, err := ts.Get(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	return ts, topic.Partition(0), ps
}

// during runs fn while a call of op is inside its store read, after the
// snapshot was taken.
func during(ps *pausingStore, op func() error, fn func()) error {
	ps.arm()
	done := make(chan error, 1)
	go func() { done <- op() }()
	<-ps.taken
	fn()
	close(ps.release)
	return <-done
}

// Issue 11, item 2a: a transactional commit that lands while a partition
// is first loaded must not be forgotten: the LSO stays at the open
// transaction, not the high watermark.
func TestLoadRacingATransactionalCommit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.produce(t, recordBatch(2, -1, 0, false))
	ts, p, ps := readSide(t, e)
	var first int64
	err := during(ps, func() error { return ts.Load(ctx, p) }, func() {
		first = e.produce(t, recordBatch(3, 7, 0, true))
		// The commit reaches this view as a notification would.
		rows, err := e.store.Index(ctx, p.TP, first, 1<<20, 10)
		if err != nil {
			t.Error(err)
		}
		ts.Committed(p.TP, rows, true)
	})
	if err != nil {
		t.Fatal(err)
	}
	lso, err := ts.StableOffset(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if lso != first {
		t.Fatalf("LSO %d with a transaction open at %d: read_committed would see it", lso, first)
	}
}

// Issue 11, item 2b: a transactional commit that lands during the LSO
// re-read must not make that read return the post-commit high watermark.
func TestStableOffsetRacingATransactionalCommit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ts, p, ps := readSide(t, e)
	if err := ts.Load(ctx, p); err != nil {
		t.Fatal(err)
	}
	notify := func(from int64) {
		rows, err := e.store.Index(ctx, p.TP, from, 1<<20, 10)
		if err != nil {
			t.Error(err)
		}
		ts.Committed(p.TP, rows, true)
	}
	notify(e.produce(t, recordBatch(2, -1, 0, false))) // the LSO is now stale
	var first int64
	var lso int64
	err := during(ps, func() (err error) { lso, err = ts.StableOffset(ctx, p); return err }, func() {
		first = e.produce(t, recordBatch(3, 7, 0, true))
		notify(first)
	})
	if err != nil {
		t.Fatal(err)
	}
	if lso > first {
		t.Fatalf("LSO %d returned while a transaction is open at %d", lso, first)
	}
	if lso, err := ts.StableOffset(ctx, p); err != nil || lso != first {
		t.Fatalf("next read: LSO %d (%v), want %d", lso, err, first)
	}
}

// fakeWatcher is a CommitWatcher whose connection the test controls: each
// WatchCommits call takes the next step.
type fakeWatcher struct {
	steps chan func(ready func()) error
}

func (w *fakeWatcher) WatchCommits(ctx context.Context, h metastore.CommitHandler) error {
	select {
	case step := <-w.steps:
		return step(func() {
			if err := h.Ready(0); err != nil {
				panic(err)
			}
		})
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *fakeWatcher) AckTopicDeletions(context.Context, string, int64) error { return nil }

func (w *fakeWatcher) TopicDeletionSeen(context.Context, string) (bool, error) { return true, nil }

// Issue 11, item 6: after the notification connection comes back, commits
// other agents made while it was down must be seen, even if a fetch loaded
// the partition between the failure and the reconnect.
func TestResyncAfterNotificationsComeBack(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ts := partition.NewTopics(e.store)
	topic, err := ts.Get(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	p := topic.Partition(0)
	w := &fakeWatcher{steps: make(chan func(func()) error)}
	go ts.WatchCommits(ctx, w, "this-agent", discard())
	listening := make(chan struct{})
	w.steps <- func(func()) error { return errors.New("connection lost") }
	// While not listening, a fetch loads the partition, then another agent
	// commits (no notification reaches us).
	if err := ts.Load(ctx, p); err != nil {
		t.Fatal(err)
	}
	e.produce(t, recordBatch(4, -1, 0, false))
	w.steps <- func(ready func()) error { ready(); close(listening); <-ctx.Done(); return ctx.Err() }
	<-listening
	if err := ts.Load(ctx, p); err != nil {
		t.Fatal(err)
	}
	if hw, _ := p.Offsets(); hw != 4 {
		t.Fatalf("high watermark %d after notifications came back; the store has 4", hw)
	}
}

// Issue 11, item 6: a load racing an invalidation must not mark the
// partition loaded with a snapshot from before the invalidation.
func TestLoadRacingInvalidate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ts, p, ps := readSide(t, e)
	err := during(ps, func() error { return ts.Load(ctx, p) }, func() {
		e.produce(t, recordBatch(5, -1, 0, false)) // missed: no notification
		ts.Invalidate()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Load(ctx, p); err != nil {
		t.Fatal(err)
	}
	if hw, _ := p.Offsets(); hw != 5 {
		t.Fatalf("high watermark %d; the store has 5", hw)
	}
}

// A reader above the cached high watermark asks the store before anyone
// answers OFFSET_OUT_OF_RANGE: Resync re-reads the partition.
func TestResyncRaisesAStaleHighWatermark(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ts, p, _ := readSide(t, e)
	if err := ts.Load(ctx, p); err != nil {
		t.Fatal(err)
	}
	e.produce(t, recordBatch(3, -1, 0, false)) // missed: no notification
	if err := ts.Resync(ctx, p); err != nil {
		t.Fatal(err)
	}
	if hw, _ := p.Offsets(); hw != 3 {
		t.Fatalf("high watermark %d after Resync; the store has 3", hw)
	}
}

// countingStore counts full topic listings.
type countingStore struct {
	partition.Store
	lists atomic.Int64
}

func (s *countingStore) Topics(ctx context.Context) ([]metastore.Topic, error) {
	s.lists.Add(1)
	return s.Store.Topics(ctx)
}

// Issue 11, item 10: fetches by unknown topic ids (Fetch v13+) must not
// each scan every topic in the store.
func TestUnknownTopicIDsDoNotScanPerLookup(t *testing.T) {
	e := newEnv(t)
	cs := &countingStore{Store: e.store}
	ts := partition.NewTopics(cs)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := ts.GetByID(context.Background(), metastore.TopicID{0xee, byte(i)}); !errors.Is(err, metastore.ErrUnknownTopic) {
				t.Errorf("unknown id: %v, want ErrUnknownTopic", err)
			}
		}(i)
	}
	wg.Wait()
	if n := cs.lists.Load(); n > 2 {
		t.Fatalf("%d topic listings for 50 lookups of unknown ids", n)
	}
	// A known id is still found after a miss-driven refresh.
	topic, err := ts.GetByID(context.Background(), e.topic.ID)
	if err != nil || topic.Name != "t" {
		t.Fatalf("known id: %v %v", topic, err)
	}
}
