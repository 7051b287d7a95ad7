package partition

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
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
			p = &Partition{TP: tp, TopicName: t.Name, Index: i, lso: -1}
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

func (ts *Topics) dropLocked(st *Topic) {
	delete(ts.byName, st.Name)
	delete(ts.byID, st.ID)
	for _, p := range st.Partitions {
		delete(ts.parts, p.TP)
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
	if err := ts.Refresh(ctx); err != nil {
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

// Refresh reloads every topic from the store.
func (ts *Topics) Refresh(ctx context.Context) error {
	all, err := ts.store.Topics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	seen := make(map[string]bool, len(all))
	for _, t := range all {
		ts.Put(t)
		seen[t.Name] = true
	}
	ts.mu.Lock()
	for name, st := range ts.byName {
		if !seen[name] {
			ts.dropLocked(st)
		}
	}
	ts.mu.Unlock()
	return nil
}

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
// last stable offset, so read_committed readers re-read it. Rows of
// partitions the cache does not hold are ignored: they load from the store
// on first use.
func (ts *Topics) Committed(tp metastore.TopicPartition, rows []metastore.IndexEntry, transactional bool) {
	p := ts.PartitionOf(tp)
	if p == nil {
		return
	}
	for _, row := range rows {
		p.Committed(row)
	}
	if transactional {
		p.LSOChanged()
	}
}

// Vanished forgets a topic the store no longer has (deleted elsewhere).
func (ts *Topics) Vanished(id metastore.TopicID) { ts.DropID(id) }

// Load makes sure p's offsets have been read from the store.
func (ts *Topics) Load(ctx context.Context, p *Partition) error {
	p.mu.Lock()
	loaded := p.loaded
	p.mu.Unlock()
	if loaded {
		return nil
	}
	states, err := ts.store.Partitions(ctx, p.TP.Topic)
	if err != nil {
		if errors.Is(err, metastore.ErrUnknownTopic) {
			return metastore.ErrUnknownTopic
		}
		return fmt.Errorf("load partitions of %s: %w", p.TopicName, err)
	}
	for _, s := range states {
		ts.mu.RLock()
		q := ts.parts[metastore.TopicPartition{Topic: p.TP.Topic, Partition: s.Partition}]
		ts.mu.RUnlock()
		if q == nil {
			continue
		}
		q.mu.Lock()
		if !q.loaded {
			q.logStart = s.LogStartOffset
			q.loaded = true
			q.setLSOLocked(s)
			q.lsoStale = false
		}
		q.hw = max(q.hw, s.HighWatermark)
		q.mu.Unlock()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.loaded {
		return fmt.Errorf("load partition %s/%d: not in the store", p.TopicName, p.Index)
	}
	return nil
}

// StableOffset returns p's last stable offset, reading it from the store if
// a commit involving transactions may have moved it.
func (ts *Topics) StableOffset(ctx context.Context, p *Partition) (int64, error) {
	if err := ts.Load(ctx, p); err != nil {
		return 0, err
	}
	p.mu.Lock()
	stale, gen := p.lsoStale, p.lsoGen
	lso := p.lsoLocked()
	p.mu.Unlock()
	if !stale {
		return lso, nil
	}
	states, err := ts.store.Partitions(ctx, p.TP.Topic)
	if err != nil {
		return 0, fmt.Errorf("load last stable offset of %s/%d: %w", p.TopicName, p.Index, err)
	}
	for _, s := range states {
		if s.Partition != p.Index {
			continue
		}
		p.mu.Lock()
		p.hw = max(p.hw, s.HighWatermark)
		p.setLSOLocked(s)
		if p.lsoGen == gen {
			p.lsoStale = false
		}
		lso = p.lsoLocked()
		p.mu.Unlock()
	}
	return lso, nil
}

// Invalidate marks every partition to be reloaded from the store on next
// use, after the agent may have missed commits by other agents.
func (ts *Topics) Invalidate() {
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
