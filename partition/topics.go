package partition

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siltstream/silt/metastore"
)

// Store is what the read side needs from the metastore.
type Store interface {
	Topic(ctx context.Context, name string) (metastore.Topic, error)
	Topics(ctx context.Context) ([]metastore.Topic, error)
	Partitions(ctx context.Context, topicID metastore.TopicID) ([]metastore.PartitionState, error)
	Index(ctx context.Context, tp metastore.TopicPartition, offset int64, maxBytes int64, limit int) ([]metastore.IndexEntry, error)
	IndexBySegment(ctx context.Context, segmentKey string) ([]metastore.IndexEntry, error)
}

// Topic is one topic as the agent knows it. A Topic is never modified once
// published; a change (new partitions, configs) publishes a new one that
// reuses the Partition objects.
type Topic struct {
	ID         metastore.TopicID
	Name       string
	Config     map[string]string
	Partitions []*Partition
}

// Partition returns partition i, or nil if the topic has no such partition.
func (t *Topic) Partition(i int32) *Partition {
	if i < 0 || int(i) >= len(t.Partitions) {
		return nil
	}
	return t.Partitions[i]
}

// Topics caches the topics of the cluster. Lookups by name fall back to the
// store, so topics created elsewhere are found.
type Topics struct {
	store Store

	mu     sync.RWMutex
	byName map[string]*Topic
	byID   map[metastore.TopicID]*Topic
	parts  map[metastore.TopicPartition]*Partition // survive topic refreshes

	epoch atomic.Uint64 // moved by Invalidate

	missMu          sync.Mutex // serializes refreshes for unknown ids
	lastMissRefresh time.Time

	freshMu  sync.Mutex // guards the two listings below (RefreshFresh)
	fresh    *listing   // in flight: began before callers now waiting
	freshest *listing   // queued: begins once fresh is done; new callers join it
}

// listing is one shared reload of every topic (RefreshFresh).
type listing struct {
	done    chan struct{}
	err     error
	waiters int // callers sharing it (guarded by freshMu)
}

// NewTopics returns an empty cache over store.
func NewTopics(store Store) *Topics {
	return &Topics{
		store:  store,
		byName: make(map[string]*Topic),
		byID:   make(map[metastore.TopicID]*Topic),
		parts:  make(map[metastore.TopicPartition]*Partition),
	}
}

// Put installs t, reusing partition objects so their cached state survives.
func (ts *Topics) Put(t metastore.Topic) *Topic {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if old, ok := ts.byName[t.Name]; ok && old.ID != t.ID {
		ts.dropLocked(old)
	}
	st := &Topic{ID: t.ID, Name: t.Name, Config: t.Config}
	for i := int32(0); i < t.Partitions; i++ {
		tp := metastore.TopicPartition{Topic: t.ID, Partition: i}
		p, ok := ts.parts[tp]
		if !ok {
			p = &Partition{TP: tp, TopicName: t.Name, Index: i}
			ts.parts[tp] = p
		}
		st.Partitions = append(st.Partitions, p)
	}
	ts.byName[t.Name] = st
	ts.byID[t.ID] = st
	return st
}

// Drop forgets a topic by name.
func (ts *Topics) Drop(name string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if st, ok := ts.byName[name]; ok {
		ts.dropLocked(st)
	}
}

// DropID forgets a topic by id (deleted through another agent).
func (ts *Topics) DropID(id metastore.TopicID) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if st, ok := ts.byID[id]; ok {
		ts.dropLocked(st)
	}
}

// dropLocked forgets a deleted topic. Its partitions are marked gone, so
// a reader still holding one (a long poll, a fetch between lookup and
// read) answers "unknown topic" instead of the old topic's rows, and
// waiting long polls wake to say so.
func (ts *Topics) dropLocked(st *Topic) {
	delete(ts.byName, st.Name)
	delete(ts.byID, st.ID)
	for _, p := range st.Partitions {
		delete(ts.parts, p.TP)
		p.mu.Lock()
		p.gone = true
		p.tail, p.window = nil, nil
		p.wakeLocked()
		p.mu.Unlock()
	}
}

// Get returns a topic by name, asking the store if the agent does not know
// it. Unknown topics give metastore.ErrUnknownTopic.
func (ts *Topics) Get(ctx context.Context, name string) (*Topic, error) {
	ts.mu.RLock()
	st, ok := ts.byName[name]
	ts.mu.RUnlock()
	if ok {
		return st, nil
	}
	t, err := ts.store.Topic(ctx, name)
	if err != nil {
		return nil, err
	}
	return ts.Put(t), nil
}

// GetByID returns a topic by id from the cache, refreshing all topics from
// the store on a miss.
func (ts *Topics) GetByID(ctx context.Context, id metastore.TopicID) (*Topic, error) {
	ts.mu.RLock()
	st, ok := ts.byID[id]
	ts.mu.RUnlock()
	if ok {
		return st, nil
	}
	if err := ts.refreshForMiss(ctx); err != nil {
		return nil, err
	}
	ts.mu.RLock()
	st, ok = ts.byID[id]
	ts.mu.RUnlock()
	if !ok {
		return nil, metastore.ErrUnknownTopic
	}
	return st, nil
}

// missRefreshEvery bounds how often lookups of unknown topic ids reload
// every topic: a client fetching an id that does not exist (a deleted
// topic, a typo, a hostile client) must not cost a full topic scan per
// request.
const missRefreshEvery = time.Second

// refreshForMiss reloads every topic unless another miss did within
// missRefreshEvery; concurrent misses wait for one reload.
func (ts *Topics) refreshForMiss(ctx context.Context) error {
	ts.missMu.Lock()
	defer ts.missMu.Unlock()
	if !ts.lastMissRefresh.IsZero() && time.Since(ts.lastMissRefresh) < missRefreshEvery {
		return nil
	}
	ts.lastMissRefresh = time.Now()
	return ts.Refresh(ctx)
}

// Refresh reloads every topic from the store, dropping those it no longer
// has.
func (ts *Topics) Refresh(ctx context.Context) error {
	// Only topics cached before the listing was read can be judged by it;
	// one cached since may have been created after it.
	ts.mu.RLock()
	before := make(map[metastore.TopicID]bool, len(ts.byID))
	for id := range ts.byID {
		before[id] = true
	}
	ts.mu.RUnlock()
	all, err := ts.store.Topics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	seen := make(map[metastore.TopicID]bool, len(all))
	for _, t := range all {
		ts.Put(t)
		seen[t.ID] = true
	}
	ts.mu.Lock()
	for id, st := range ts.byID {
		if before[id] && !seen[id] {
			ts.dropLocked(st)
		}
	}
	ts.mu.Unlock()
	return nil
}

// RefreshFresh reloads every topic with a listing read after the call:
// everything committed before it is then cached. Callers share listings —
// one in flight began too early for callers arriving meanwhile, so they
// share the next, which starts when it ends — so however many callers
// come, an agent reads at most one listing at a time and each caller waits
// for at most two.
func (ts *Topics) RefreshFresh(ctx context.Context) error {
	ts.freshMu.Lock()
	l := ts.freshest
	if l == nil {
		l = &listing{done: make(chan struct{})}
		if ts.fresh == nil {
			ts.fresh = l
			go ts.runListings(l)
		} else {
			ts.freshest = l
		}
	}
	l.waiters++
	ts.freshMu.Unlock()
	select {
	case <-l.done:
		return l.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runListings reads l, then each listing queued meanwhile, until none is.
// A listing is not cut short by a caller that stops waiting for it.
func (ts *Topics) runListings(l *listing) {
	for l != nil {
		ctx, cancel := context.WithTimeout(context.Background(), freshListingTimeout)
		l.err = ts.Refresh(ctx)
		cancel()
		close(l.done)
		ts.freshMu.Lock()
		l, ts.freshest = ts.freshest, nil
		ts.fresh = l
		ts.freshMu.Unlock()
	}
}

// freshListingTimeout bounds one shared listing (RefreshFresh).
const freshListingTimeout = 30 * time.Second

// RefreshEvery reloads every topic each interval until ctx ends, so topics
// created, grown or deleted through other agents show up.
func (ts *Topics) RefreshEvery(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := ts.Refresh(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
	}
}

// List returns the known topics sorted by name.
func (ts *Topics) List() []*Topic {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	out := make([]*Topic, 0, len(ts.byName))
	for _, st := range ts.byName {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Counts returns how many topics and partitions the cache knows.
func (ts *Topics) Counts() (topics, partitions int) {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	for _, t := range ts.byName {
		partitions += len(t.Partitions)
	}
	return len(ts.byName), partitions
}

// PartitionOf returns the cached partition, or nil.
func (ts *Topics) PartitionOf(tp metastore.TopicPartition) *Partition {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	return ts.parts[tp]
}

// Committed applies rows the agent committed for one partition (its own
// flush, or another agent's learned by notification): the high watermark
// moves and long polls wake. transactional says the rows may have moved the
// last stable offset. The rows and what they do to the LSO are applied in
// one critical section, before anyone is woken, so no reader sees the new
// end of the log with an LSO that does not account for it. Rows of
// partitions the cache does not hold are ignored: they load from the store
// on first use.
func (ts *Topics) Committed(tp metastore.TopicPartition, rows []metastore.IndexEntry, transactional bool) {
	p := ts.PartitionOf(tp)
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	contiguous := true
	for _, row := range rows {
		contiguous = p.commitLocked(row) && contiguous
	}
	switch {
	case transactional || !contiguous:
		// The LSO may have moved in a way only the store knows.
		p.lsoStale = true
		p.lsoGen++
	case !p.lsoStale && !p.open:
		p.lso = p.hw // no transaction open, none added: the LSO is the end
	}
	p.wakeLocked()
}

// LogStartMoved applies a partition's new log start offset (retention or
// DeleteRecords, by this agent or, through the store's notifications,
// another): the cached log start moves forward and cached index rows below
// it are dropped. Partitions the cache does not hold are ignored: they
// load from the store on first use.
func (ts *Topics) LogStartMoved(tp metastore.TopicPartition, logStart int64) {
	p := ts.PartitionOf(tp)
	if p == nil {
		return
	}
	p.mu.Lock()
	p.raiseLogStartLocked(logStart)
	p.mu.Unlock()
}

// IndexReplaced drops the cached index rows of a partition whose rows
// were replaced by a segment with fewer records (keyed compaction, by this
// agent or, through the store's notifications, another), so its next
// reads resolve the new rows instead of reading the replaced segment,
// whose object stays in the bucket until gc.grace has passed.
func (ts *Topics) IndexReplaced(tp metastore.TopicPartition) {
	if p := ts.PartitionOf(tp); p != nil {
		p.dropIndexCache()
	}
}

// Vanished forgets a topic the store no longer has (deleted elsewhere).
func (ts *Topics) Vanished(id metastore.TopicID) { ts.DropID(id) }

// Load makes sure p's offsets have been read from the store. It reads
// every partition of p's topic in one query.
func (ts *Topics) Load(ctx context.Context, p *Partition) error {
	p.mu.Lock()
	loaded, gone := p.loaded, p.gone
	p.mu.Unlock()
	switch {
	case gone:
		return fmt.Errorf("partition %s/%d: %w", p.TopicName, p.Index, metastore.ErrUnknownTopic)
	case loaded:
		return nil
	}
	if err := ts.reread(ctx, p.TP.Topic, false); err != nil {
		return err
	}
	p.mu.Lock()
	loaded, seen := p.loaded, p.seen
	p.mu.Unlock()
	switch {
	case !seen:
		return fmt.Errorf("load partition %s/%d: not in the store", p.TopicName, p.Index)
	case !loaded:
		// An invalidation raced the read: its snapshot may predate commits
		// we were never told of. Read again, once; a caller racing
		// invalidations still gets offsets, just not cached ones.
		return ts.reread(ctx, p.TP.Topic, false)
	}
	return nil
}

// Resync re-reads p's offsets from the store now, for a reader that must
// not trust a cached value: before answering OFFSET_OUT_OF_RANGE above the
// cached high watermark, or an end offset. Other partitions of the topic
// are refreshed on the way.
func (ts *Topics) Resync(ctx context.Context, p *Partition) error {
	return ts.reread(ctx, p.TP.Topic, true)
}

// reread reads a topic's partitions from the store and installs their
// offsets: in partitions not loaded yet, or in all of them if force is set.
// Offsets only move forward. A partition is marked loaded only if no
// invalidation happened during the read.
func (ts *Topics) reread(ctx context.Context, topic metastore.TopicID, force bool) error {
	ts.mu.RLock()
	var qs []*Partition
	for tp, q := range ts.parts {
		if tp.Topic == topic {
			qs = append(qs, q)
		}
	}
	ts.mu.RUnlock()
	epoch := ts.epoch.Load()
	gens := make(map[int32]uint64, len(qs))
	for _, q := range qs {
		q.mu.Lock()
		gens[q.Index] = q.lsoGen
		q.mu.Unlock()
	}
	states, err := ts.store.Partitions(ctx, topic)
	if err != nil {
		if errors.Is(err, metastore.ErrUnknownTopic) {
			// Deleted, and we were not told (yet): whatever this agent
			// still holds of it must not be served, nor found by name.
			ts.DropID(topic)
			return metastore.ErrUnknownTopic
		}
		return fmt.Errorf("load partitions: %w", err)
	}
	for _, s := range states {
		gen, ok := gens[s.Partition]
		q := ts.PartitionOf(metastore.TopicPartition{Topic: topic, Partition: s.Partition})
		if q == nil || !ok {
			continue // added since we listed them: it loads on first use
		}
		q.mu.Lock()
		if force || !q.loaded {
			q.seen = true
			q.hw = max(q.hw, s.HighWatermark)
			q.raiseLogStartLocked(s.LogStartOffset)
			q.installLSOLocked(s, gen)
			if ts.epoch.Load() == epoch {
				q.loaded = true
			}
			q.wakeLocked()
		}
		q.mu.Unlock()
	}
	return nil
}

// StableOffset returns p's last stable offset, reading it from the store if
// a commit may have moved it in a way this view cannot tell.
func (ts *Topics) StableOffset(ctx context.Context, p *Partition) (int64, error) {
	if err := ts.Load(ctx, p); err != nil {
		return 0, err
	}
	p.mu.Lock()
	stale, lso := p.lsoStale, p.lso
	p.mu.Unlock()
	if !stale {
		return lso, nil
	}
	if err := ts.reread(ctx, p.TP.Topic, true); err != nil {
		return 0, fmt.Errorf("load last stable offset of %s/%d: %w", p.TopicName, p.Index, err)
	}
	return p.CachedLSO(), nil
}

// Invalidate marks every partition to be reloaded from the store on next
// use, after the agent may have missed commits by other agents. A load
// that was reading while this ran does not count as a load.
func (ts *Topics) Invalidate() {
	ts.epoch.Add(1)
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	for _, p := range ts.parts {
		p.mu.Lock()
		p.loaded = false
		p.tail = p.tail[:0]
		p.window = nil
		p.mu.Unlock()
	}
}
