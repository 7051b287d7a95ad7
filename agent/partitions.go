package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/siltstream/silt/metastore"
)

// tailCap bounds the index rows a partition keeps in memory. Rows are
// immutable, so a tailing consumer is served from here without a query; at
// 10 flushes a second 256 rows are about 25 s of history.
const tailCap = 256

// partition is the agent's view of one partition: its offsets and the
// newest index rows. The store is the source of truth; this is a cache that
// the agent's own commits keep current.
type partition struct {
	tp    metastore.TopicPartition
	topic string
	index int32

	mu       sync.Mutex // guards everything below
	loaded   bool
	hw       int64
	logStart int64
	tail     []metastore.IndexEntry // contiguous rows, the last ending at hw-1
	// window holds contiguous rows last read from the store for a reader
	// behind the tail (a consumer catching up), so its next fetches need no
	// query until it reads past them.
	window  []metastore.IndexEntry
	waiters map[chan struct{}]struct{}

	// The last stable offset: -1 while no transaction is open (it is then
	// the high watermark). lsoStale is set when a commit touched
	// transactional data; the next read_committed reader re-reads it.
	// lsoGen counts such commits, so a re-read racing one stays stale.
	lso      int64
	lsoStale bool
	lsoGen   uint64
}

// lsoChanged notes that a commit involving transactions may have moved
// the last stable offset.
func (p *partition) lsoChanged() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lsoStale = true
	p.lsoGen++
	p.wakeLocked()
}

// cachedLSO returns the last stable offset as known, without a query.
func (p *partition) cachedLSO() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lsoLocked()
}

func (p *partition) lsoLocked() int64 {
	if p.lso < 0 || p.lso > p.hw {
		return p.hw
	}
	return p.lso
}

// setLSOLocked installs a last stable offset read from the store.
func (p *partition) setLSOLocked(s metastore.PartitionState) {
	p.lso = -1
	if s.LastStableOffset < s.HighWatermark {
		p.lso = s.LastStableOffset
	}
}

// offsets returns the high watermark and log start offset.
func (p *partition) offsets() (hw, logStart int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hw, p.logStart
}

// committed records a committed chunk: it moves the high watermark, keeps
// the row for readers and wakes long polls.
func (p *partition) committed(e metastore.IndexEntry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.wakeLocked()
	if !p.loaded {
		// Not read from the store yet: remember how far we know the log goes,
		// so a load racing with this commit cannot move the watermark back.
		p.hw = max(p.hw, e.LastOffset+1)
		return
	}
	if n := len(p.tail); n > 0 {
		switch last := p.tail[n-1].LastOffset; {
		case e.BaseOffset <= last:
			return // already known (a late notification of an older commit)
		case e.BaseOffset != last+1:
			p.tail = p.tail[:0] // a gap: rows we did not see; keep the tail contiguous
		}
	}
	if len(p.tail) == tailCap {
		copy(p.tail, p.tail[1:])
		p.tail = p.tail[:tailCap-1]
	}
	p.tail = append(p.tail, e)
	if e.LastOffset+1 > p.hw {
		p.hw = e.LastOffset + 1
	}
}

// wakeLocked signals every long poll watching p.
func (p *partition) wakeLocked() {
	for ch := range p.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// watch registers ch to be signalled when the high watermark moves.
func (p *partition) watch(ch chan struct{}) {
	p.mu.Lock()
	if p.waiters == nil {
		p.waiters = make(map[chan struct{}]struct{})
	}
	p.waiters[ch] = struct{}{}
	p.mu.Unlock()
}

func (p *partition) unwatch(ch chan struct{}) {
	p.mu.Lock()
	delete(p.waiters, ch)
	p.mu.Unlock()
}

// cachedIndex returns rows covering offset from memory — the tail the
// agent's commits keep, or the window of rows last read from the store — or
// ok=false if neither reaches it.
func (p *partition) cachedIndex(offset, maxBytes int64) ([]metastore.IndexEntry, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rows, ok := rowsFrom(p.tail, offset, maxBytes); ok {
		return rows, true
	}
	return rowsFrom(p.window, offset, maxBytes)
}

// rowsFrom returns the rows of contiguous rows covering offset onwards, up to
// maxBytes (at least one row).
func rowsFrom(rows []metastore.IndexEntry, offset, maxBytes int64) ([]metastore.IndexEntry, bool) {
	if len(rows) == 0 || rows[0].BaseOffset > offset || rows[len(rows)-1].LastOffset < offset {
		return nil, false
	}
	i := sort.Search(len(rows), func(i int) bool { return rows[i].LastOffset >= offset })
	var out []metastore.IndexEntry
	var n int64
	for ; i < len(rows) && (n < maxBytes || len(out) == 0); i++ {
		out = append(out, rows[i])
		n += rows[i].Length
	}
	return out, true
}

// setWindow keeps rows read from the store for the next fetches.
func (p *partition) setWindow(rows []metastore.IndexEntry) {
	p.mu.Lock()
	p.window = rows
	p.mu.Unlock()
}

// topicState is one topic as the agent knows it.
type topicState struct {
	id     metastore.TopicID
	name   string
	config map[string]string
	parts  []*partition
}

// topics caches the topics of the cluster. Lookups by name fall back to the
// store, so topics created elsewhere are found.
type topics struct {
	store metastore.Store

	mu     sync.RWMutex
	byName map[string]*topicState
	byID   map[metastore.TopicID]*topicState
	parts  map[metastore.TopicPartition]*partition // survive topic refreshes
}

func newTopics(store metastore.Store) *topics {
	return &topics{
		store:  store,
		byName: make(map[string]*topicState),
		byID:   make(map[metastore.TopicID]*topicState),
		parts:  make(map[metastore.TopicPartition]*partition),
	}
}

// errUnknownTopic is returned by lookups for topics that do not exist.
var errUnknownTopic = metastore.ErrUnknownTopic

// put installs t, reusing partition objects so their cached state survives.
func (ts *topics) put(t metastore.Topic) *topicState {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if old, ok := ts.byName[t.Name]; ok && old.id != t.ID {
		ts.dropLocked(old)
	}
	st := &topicState{id: t.ID, name: t.Name, config: t.Config}
	for i := int32(0); i < t.Partitions; i++ {
		tp := metastore.TopicPartition{Topic: t.ID, Partition: i}
		p, ok := ts.parts[tp]
		if !ok {
			p = &partition{tp: tp, topic: t.Name, index: i, lso: -1}
			ts.parts[tp] = p
		}
		st.parts = append(st.parts, p)
	}
	ts.byName[t.Name] = st
	ts.byID[t.ID] = st
	return st
}

// drop forgets a topic.
func (ts *topics) drop(name string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if st, ok := ts.byName[name]; ok {
		ts.dropLocked(st)
	}
}

func (ts *topics) dropLocked(st *topicState) {
	delete(ts.byName, st.name)
	delete(ts.byID, st.id)
	for _, p := range st.parts {
		delete(ts.parts, p.tp)
	}
}

// get returns a topic by name, asking the store if the agent does not know it.
func (ts *topics) get(ctx context.Context, name string) (*topicState, error) {
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
	return ts.put(t), nil
}

// getByID returns a topic by id from the agent's cache, refreshing all
// topics from the store on a miss.
func (ts *topics) getByID(ctx context.Context, id metastore.TopicID) (*topicState, error) {
	ts.mu.RLock()
	st, ok := ts.byID[id]
	ts.mu.RUnlock()
	if ok {
		return st, nil
	}
	if err := ts.refresh(ctx); err != nil {
		return nil, err
	}
	ts.mu.RLock()
	st, ok = ts.byID[id]
	ts.mu.RUnlock()
	if !ok {
		return nil, errUnknownTopic
	}
	return st, nil
}

// refresh reloads every topic from the store.
func (ts *topics) refresh(ctx context.Context) error {
	all, err := ts.store.Topics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	seen := make(map[string]bool, len(all))
	for _, t := range all {
		ts.put(t)
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

// list returns the known topics sorted by name.
func (ts *topics) list() []*topicState {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	out := make([]*topicState, 0, len(ts.byName))
	for _, st := range ts.byName {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// load makes sure p's offsets have been read from the store.
func (ts *topics) load(ctx context.Context, p *partition) error {
	p.mu.Lock()
	loaded := p.loaded
	p.mu.Unlock()
	if loaded {
		return nil
	}
	states, err := ts.store.Partitions(ctx, p.tp.Topic)
	if err != nil {
		if errors.Is(err, metastore.ErrUnknownTopic) {
			return errUnknownTopic
		}
		return fmt.Errorf("load partitions of %s: %w", p.topic, err)
	}
	for _, s := range states {
		ts.mu.RLock()
		q := ts.parts[metastore.TopicPartition{Topic: p.tp.Topic, Partition: s.Partition}]
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
		return fmt.Errorf("load partition %s/%d: not in the store", p.topic, p.index)
	}
	return nil
}

// stableOffset returns p's last stable offset, reading it from the store
// if a commit involving transactions may have moved it.
func (ts *topics) stableOffset(ctx context.Context, p *partition) (int64, error) {
	if err := ts.load(ctx, p); err != nil {
		return 0, err
	}
	p.mu.Lock()
	stale, gen := p.lsoStale, p.lsoGen
	lso := p.lsoLocked()
	p.mu.Unlock()
	if !stale {
		return lso, nil
	}
	states, err := ts.store.Partitions(ctx, p.tp.Topic)
	if err != nil {
		return 0, fmt.Errorf("load last stable offset of %s/%d: %w", p.topic, p.index, err)
	}
	for _, s := range states {
		if s.Partition != p.index {
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

// partitionOf returns the cached partition, or nil.
func (ts *topics) partitionOf(tp metastore.TopicPartition) *partition {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	return ts.parts[tp]
}

// invalidate marks every partition to be reloaded from the store on next
// use, after the agent may have missed commits by other agents.
func (ts *topics) invalidate() {
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

// dropID forgets a topic by id (deleted through another agent).
func (ts *topics) dropID(id metastore.TopicID) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if st, ok := ts.byID[id]; ok {
		ts.dropLocked(st)
	}
}
