package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/ingest"
	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/sqlite"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/mem"
	"github.com/siltstream/silt/segment"
)

// recordBatch encodes a valid v2 batch of n records.
func recordBatch(n int) []byte {
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: 1000, MaxTimestamp: 1000,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n),
	}
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(fmt.Sprint("v", i))}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		rb.Records = r.AppendTo(rb.Records)
	}
	raw := rb.AppendTo(nil)
	rb.Length = int32(len(raw) - 12)
	raw = rb.AppendTo(nil)
	rb.CRC = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return rb.AppendTo(nil)
}

// observer records what the pipeline reports, in order.
type observer struct {
	mu       sync.Mutex
	rows     []metastore.IndexEntry
	vanished []metastore.TopicID
}

func (o *observer) Committed(tp metastore.TopicPartition, rows []metastore.IndexEntry, _ bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rows = append(o.rows, rows...)
}

func (o *observer) Vanished(id metastore.TopicID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.vanished = append(o.vanished, id)
}

type fixture struct {
	store  metastore.Store
	bucket *mem.Bucket
	obs    *observer
	p      *ingest.Pipeline
	topic  metastore.Topic
	stop   func()
}

// start runs a pipeline over SQLite and an in-memory bucket, with a topic
// of two partitions. store, if set, wraps the real store.
func start(t *testing.T, cfg ingest.Config, wrap func(ingest.Store) ingest.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	topic, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, bucket: mem.New(), obs: &observer{}, topic: topic}
	var s ingest.Store = st
	if wrap != nil {
		s = wrap(st)
	}
	if cfg.AgentID == "" {
		cfg.AgentID = "test"
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = time.Millisecond
	}
	if cfg.FlushBytes == 0 {
		cfg.FlushBytes = 1 << 20
	}
	if cfg.BufferBytes == 0 {
		cfg.BufferBytes = 4 << 20
	}
	if cfg.MaxUploads == 0 {
		cfg.MaxUploads = 4
	}
	f.p, err = ingest.New(cfg, f.bucket, s, f.obs, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.p.Run(rctx) }()
	f.stop = func() { f.p.Close(); <-done; cancel() }
	t.Cleanup(func() { cancel(); <-done })
	return f
}

func (f *fixture) batches(partition int32, sizes ...int) []ingest.Batch {
	var out []ingest.Batch
	for _, n := range sizes {
		data := recordBatch(n)
		_, _, hdr, err := segment.NextBatch(data)
		if err != nil {
			panic(err)
		}
		out = append(out, ingest.Batch{TP: metastore.TopicPartition{Topic: f.topic.ID, Partition: partition}, TopicName: f.topic.Name, Data: data, Header: hdr})
	}
	return out
}

func wait(t *testing.T, p *ingest.Pending) []ingest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("batches never committed: %v", err)
	}
	return p.Results()
}

// Submits that follow each other without waiting commit in submit order:
// offsets are contiguous and follow the order batches were handed in, even
// when each lands in its own flush and uploads overlap.
func TestCommitsFollowSubmitOrder(t *testing.T) {
	f := start(t, ingest.Config{MaxUploads: 4}, nil)
	ctx := context.Background()
	var pendings []*ingest.Pending
	for i := 0; i < 50; i++ {
		p, _, err := f.p.Submit(ctx, f.batches(int32(i%2), 1+i%3))
		if err != nil {
			t.Fatal(err)
		}
		pendings = append(pendings, p)
	}
	next := [2]int64{}
	for i, p := range pendings {
		r := wait(t, p)[0]
		part := i % 2
		if r.Err != nil || r.BaseOffset != next[part] {
			t.Fatalf("submit %d: %+v, want base offset %d", i, r, next[part])
		}
		next[part] += int64(1 + i%3)
	}
	states, err := f.store.Partitions(ctx, f.topic.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range states {
		if s.HighWatermark != next[i] {
			t.Fatalf("partition %d: high watermark %d, want %d", i, s.HighWatermark, next[i])
		}
	}
	// The observer saw every committed row before its submitter was
	// answered, each row's object is in the bucket, and per partition the
	// rows are contiguous.
	f.obs.mu.Lock()
	defer f.obs.mu.Unlock()
	seen := [2]int64{}
	for _, row := range f.obs.rows {
		if row.BaseOffset != seen[row.Partition] {
			t.Fatalf("observer: row %+v after offset %d", row, seen[row.Partition])
		}
		seen[row.Partition] = row.LastOffset + 1
		if _, err := f.bucket.Head(ctx, row.SegmentKey); err != nil {
			t.Fatalf("row's segment %s: %v", row.SegmentKey, err)
		}
	}
	if seen != next {
		t.Fatalf("observer saw up to %v, want %v", seen, next)
	}
}

// blockingStore holds every CommitFlush until released.
type blockingStore struct {
	ingest.Store
	release chan struct{}
}

func (s *blockingStore) CommitFlush(ctx context.Context, fl metastore.Flush) (metastore.FlushResult, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return metastore.FlushResult{}, ctx.Err()
	}
	return s.Store.CommitFlush(ctx, fl)
}

// The buffer budget holds: while commits are stuck, a Submit that does not
// fit waits and gives up with its context; one larger than the whole budget
// is refused at once; when commits resume, everything already taken commits.
func TestBackpressure(t *testing.T) {
	bs := &blockingStore{release: make(chan struct{})}
	one := len(recordBatch(1))
	// Batches may use buffer.bytes less two flushes (a flush's copy and
	// its garbage).
	f := start(t, ingest.Config{FlushBytes: int64(one), BufferBytes: int64(4 * one)}, func(s ingest.Store) ingest.Store {
		bs.Store = s
		return bs
	})
	ctx := context.Background()
	first, _, err := f.p.Submit(ctx, f.batches(0, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	// The budget is used up by batches whose commit is stuck.
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, _, err = f.p.Submit(wctx, f.batches(0, 1))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("submit over the budget: %v, want the context's deadline", err)
	}
	if _, _, err := f.p.Submit(ctx, f.batches(0, 1, 1, 1)); !errors.Is(err, ingest.ErrTooLarge) {
		t.Fatalf("submit larger than the budget: %v, want ErrTooLarge", err)
	}
	if inUse, limit := f.p.BufferBytes(); inUse != int64(2*one) || limit != int64(2*one) {
		t.Fatalf("buffer %d of %d in use, want all of %d", inUse, limit, 2*one)
	}
	close(bs.release)
	for i, r := range wait(t, first) {
		if r.Err != nil || r.BaseOffset != int64(i) {
			t.Fatalf("batch %d: %+v", i, r)
		}
	}
	// The budget came back: a new Submit fits without waiting.
	p, throttled, err := f.p.Submit(ctx, f.batches(0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if r := wait(t, p)[0]; r.Err != nil || r.BaseOffset != 2 {
		t.Fatalf("after release: %+v, throttled %v", r, throttled)
	}
}

// lostReplyStore commits the first flush and then reports an error, as a
// connection that drops after the store committed would.
type lostReplyStore struct {
	ingest.Store
	mu   sync.Mutex
	lost bool
}

func (s *lostReplyStore) CommitFlush(ctx context.Context, fl metastore.Flush) (metastore.FlushResult, error) {
	res, err := s.Store.CommitFlush(ctx, fl)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && !s.lost {
		s.lost = true
		return metastore.FlushResult{}, errors.New("connection reset after commit")
	}
	return res, err
}

// A commit whose reply is lost is retried; the retry is recognised by the
// store and answered with the offsets of the first attempt, so nothing is
// appended twice and the submitter learns the real offsets.
func TestRetriedCommitAfterLostReply(t *testing.T) {
	f := start(t, ingest.Config{}, func(s ingest.Store) ingest.Store { return &lostReplyStore{Store: s} })
	ctx := context.Background()
	p, _, err := f.p.Submit(ctx, f.batches(1, 3))
	if err != nil {
		t.Fatal(err)
	}
	if r := wait(t, p)[0]; r.Err != nil || r.BaseOffset != 0 {
		t.Fatalf("first batch: %+v", r)
	}
	p, _, err = f.p.Submit(ctx, f.batches(1, 2))
	if err != nil {
		t.Fatal(err)
	}
	if r := wait(t, p)[0]; r.Err != nil || r.BaseOffset != 3 {
		t.Fatalf("second batch: %+v, want base offset 3 (the first was not appended twice)", r)
	}
	states, err := f.store.Partitions(ctx, f.topic.ID)
	if err != nil {
		t.Fatal(err)
	}
	if hw := states[1].HighWatermark; hw != 5 {
		t.Fatalf("high watermark %d, want 5", hw)
	}
}

// Close stops new batches but flushes what is buffered; Run then returns.
func TestCloseDrains(t *testing.T) {
	f := start(t, ingest.Config{FlushInterval: time.Hour}, nil) // only Close flushes
	ctx := context.Background()
	p, _, err := f.p.Submit(ctx, f.batches(0, 2))
	if err != nil {
		t.Fatal(err)
	}
	f.stop()
	if r := wait(t, p)[0]; r.Err != nil || r.BaseOffset != 0 {
		t.Fatalf("buffered batch after Close: %+v", r)
	}
	if _, _, err := f.p.Submit(ctx, f.batches(0, 1)); !errors.Is(err, ingest.ErrClosed) {
		t.Fatalf("submit after Close: %v, want ErrClosed", err)
	}
}

// Batches of a topic deleted before their flush commits get
// ErrUnknownTopic; the observer learns the topic vanished; the other
// partitions' batches in the same flush commit.
func TestDeletedTopicFailsOnlyItsBatches(t *testing.T) {
	f := start(t, ingest.Config{FlushInterval: time.Hour}, nil)
	ctx := context.Background()
	other, err := f.store.CreateTopic(ctx, metastore.TopicSpec{Name: "other", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	bs := f.batches(0, 1)
	data := recordBatch(1)
	_, _, hdr, _ := segment.NextBatch(data)
	bs = append(bs, ingest.Batch{TP: metastore.TopicPartition{Topic: other.ID}, TopicName: other.Name, Data: data, Header: hdr})
	p, _, err := f.p.Submit(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.DeleteTopic(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	f.stop()
	rs := wait(t, p)
	if rs[0].Err != nil || rs[0].BaseOffset != 0 {
		t.Fatalf("surviving topic's batch: %+v", rs[0])
	}
	if !errors.Is(rs[1].Err, metastore.ErrUnknownTopic) {
		t.Fatalf("deleted topic's batch: %+v, want ErrUnknownTopic", rs[1])
	}
	f.obs.mu.Lock()
	defer f.obs.mu.Unlock()
	if len(f.obs.vanished) != 1 || f.obs.vanished[0] != other.ID {
		t.Fatalf("observer told of vanished topics %v, want [%x]", f.obs.vanished, other.ID)
	}
}

// failingStore fails every commit of the first flush's segment with err,
// as a store would for a flush that can never commit.
type failingStore struct {
	ingest.Store
	mu  sync.Mutex
	err error
	bad string // the segment that fails
}

func (s *failingStore) CommitFlush(ctx context.Context, fl metastore.Flush) (metastore.FlushResult, error) {
	s.mu.Lock()
	if s.bad == "" {
		s.bad = fl.SegmentKey
	}
	fail := s.bad == fl.SegmentKey
	s.mu.Unlock()
	if fail {
		return metastore.FlushResult{}, s.err
	}
	return s.Store.CommitFlush(ctx, fl)
}

// Issue 11, item 8: a commit that fails for good fails its own flush's
// batches and nothing else; the flushes after it commit.
func TestPermanentCommitErrorDoesNotWedge(t *testing.T) {
	fs := &failingStore{err: &metastore.PermanentError{Err: errors.New("integrity violation")}}
	f := start(t, ingest.Config{}, func(s ingest.Store) ingest.Store { fs.Store = s; return fs })
	ctx := context.Background()
	p, _, err := f.p.Submit(ctx, f.batches(0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if r := wait(t, p)[0]; !metastore.IsPermanent(r.Err) {
		t.Fatalf("batch of the failed flush: %+v, want the permanent error", r)
	}
	p, _, err = f.p.Submit(ctx, f.batches(0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if r := wait(t, p)[0]; r.Err != nil || r.BaseOffset != 0 {
		t.Fatalf("next flush: %+v, want it committed at offset 0", r)
	}
	if inUse, _ := f.p.BufferBytes(); inUse != 0 {
		t.Fatalf("%d buffer bytes still reserved", inUse)
	}
}

// collectedBeforeCommit is the store as a flusher sees it when its upload
// was doomed as an orphan and the collector deleted the object and forgot
// it (a PUT that had not finished yet writes it again afterwards), all
// before the commit: the commit is then refused by the real store.
type collectedBeforeCommit struct {
	ingest.Store
	st *sqlite.Store
}

func (s *collectedBeforeCommit) CommitFlush(ctx context.Context, fl metastore.Flush) (metastore.FlushResult, error) {
	if ok, err := s.st.ForgetUpload(ctx, fl.SegmentKey); err != nil || !ok {
		return metastore.FlushResult{}, fmt.Errorf("forget upload: %v, %v", ok, err)
	}
	if err := s.st.ForgetDoomed(ctx, []string{fl.SegmentKey}); err != nil {
		return metastore.FlushResult{}, err
	}
	return s.Store.CommitFlush(ctx, fl)
}

// Issue 11, item 10, and issue 12's one deletion path: an upload whose
// record the collector doomed can never commit; its object is queued for
// the garbage collector again (which deletes it after gc.grace) rather
// than leaked or deleted outside it.
func TestUploadNotRecordedIsQueuedForGC(t *testing.T) {
	var cs *collectedBeforeCommit
	f := start(t, ingest.Config{}, func(s ingest.Store) ingest.Store {
		cs = &collectedBeforeCommit{Store: s, st: s.(*sqlite.Store)}
		return cs
	})
	ctx := context.Background()
	p, _, err := f.p.Submit(ctx, f.batches(0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if r := wait(t, p)[0]; !errors.Is(r.Err, metastore.ErrUploadNotRecorded) {
		t.Fatalf("batch: %+v, want ErrUploadNotRecorded", r)
	}
	var left []string
	if err := f.bucket.List(ctx, "", func(a objectstore.Attrs) error { left = append(left, a.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 {
		t.Fatalf("objects in the bucket: %v; want the refused segment, until the collector deletes it", left)
	}
	var queued []metastore.DoomedObject
	poll.Until(t, "the refused segment queued for the collector", func() bool {
		queued, err = f.store.DoomedObjects(ctx, 0, 10)
		return err == nil && len(queued) == 1
	})
	if queued[0].Key != left[0] {
		t.Fatalf("queued %v, want %s", queued, left[0])
	}
}

// deleteAfterCommitStore commits the first flush, deletes topic "other"
// and then reports an error, as a lost reply followed by a DeleteTopic
// before the retry would look.
type deleteAfterCommitStore struct {
	ingest.Store
	del  func() error
	mu   sync.Mutex
	done bool
}

func (s *deleteAfterCommitStore) CommitFlush(ctx context.Context, fl metastore.Flush) (metastore.FlushResult, error) {
	res, err := s.Store.CommitFlush(ctx, fl)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && !s.done {
		s.done = true
		if err := s.del(); err != nil {
			return res, err
		}
		return metastore.FlushResult{}, errors.New("connection reset after commit")
	}
	return res, err
}

// Issue 11, item 8: a commit whose reply is lost, then a DeleteTopic
// before the retry. The retry must not fail forever (every later flush
// would wait behind it): the deleted topic's batches get ErrUnknownTopic,
// the others their offsets, and later flushes commit.
func TestLostReplyThenDeleteTopic(t *testing.T) {
	ds := &deleteAfterCommitStore{}
	f := start(t, ingest.Config{FlushInterval: time.Hour}, func(s ingest.Store) ingest.Store { ds.Store = s; return ds })
	ctx := context.Background()
	other, err := f.store.CreateTopic(ctx, metastore.TopicSpec{Name: "other", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	ds.del = func() error { return f.store.DeleteTopic(context.Background(), "other") }
	bs := f.batches(0, 2)
	data := recordBatch(1)
	_, _, hdr, _ := segment.NextBatch(data)
	bs = append(bs, ingest.Batch{TP: metastore.TopicPartition{Topic: other.ID}, TopicName: other.Name, Data: data, Header: hdr})
	p, _, err := f.p.Submit(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	f.p.Close() // flush now
	rs := wait(t, p)
	if rs[0].Err != nil || rs[0].BaseOffset != 0 {
		t.Fatalf("surviving topic's batch: %+v", rs[0])
	}
	if !errors.Is(rs[1].Err, metastore.ErrUnknownTopic) {
		t.Fatalf("deleted topic's batch: %+v, want ErrUnknownTopic", rs[1])
	}
}

// TestSubmitReservedHandsOver: bytes reserved with Acquire (as the Kafka
// server does for a Produce frame before reading it) are taken over by
// SubmitReserved: what the batches do not need comes back at once, the
// rest when they commit; a refused submit returns all of it.
func TestSubmitReservedHandsOver(t *testing.T) {
	bs := &blockingStore{release: make(chan struct{})}
	one := len(recordBatch(1))
	f := start(t, ingest.Config{FlushBytes: int64(one), BufferBytes: int64(6 * one)}, func(s ingest.Store) ingest.Store {
		bs.Store = s
		return bs
	})
	ctx := context.Background()
	inUse := func() int64 { n, _ := f.p.BufferBytes(); return n }
	if f.p.Limit() != int64(4*one) {
		t.Fatalf("Limit %d, want buffer.bytes less twice flush.bytes, %d", f.p.Limit(), 4*one)
	}
	// A frame of three batches' size carrying one batch.
	if err := f.p.Acquire(ctx, int64(3*one)); err != nil {
		t.Fatal(err)
	}
	pd, throttled, err := f.p.SubmitReserved(ctx, f.batches(0, 1), int64(3*one))
	if err != nil || throttled != 0 {
		t.Fatalf("submit reserved: %v (throttled %v)", err, throttled)
	}
	if got := inUse(); got != int64(one) {
		t.Fatalf("buffer in use %d after the hand-over, want the batch's %d", got, one)
	}
	// Refused submits give their reservation back.
	if err := f.p.Acquire(ctx, int64(2*one)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.p.SubmitReserved(ctx, f.batches(0, 1, 1, 1, 1, 1), int64(2*one)); !errors.Is(err, ingest.ErrTooLarge) {
		t.Fatalf("submit larger than the buffer: %v, want ErrTooLarge", err)
	}
	if got := inUse(); got != int64(one) {
		t.Fatalf("buffer in use %d after a refused submit, want %d", got, one)
	}
	close(bs.release)
	wait(t, pd)
	poll.Until(t, "the buffer empty after the commit", func() bool { return inUse() == 0 })
}

// A flush holds at most flush.bytes (or one batch, if larger), however much
// piled up in the buffer while uploads or commits were stuck: building a
// segment copies its batches, so an unbounded cut would hold the cut's bytes
// twice at once, beyond the buffer budget, and make objects of any size.
func TestFlushesAreBoundedByFlushBytes(t *testing.T) {
	bs := &blockingStore{release: make(chan struct{})}
	one := int64(len(recordBatch(1)))
	flushBytes := 3 * one
	f := start(t, ingest.Config{FlushBytes: flushBytes, BufferBytes: 40 * one, MaxUploads: 1}, func(s ingest.Store) ingest.Store {
		bs.Store = s
		return bs
	})
	ctx := context.Background()
	var pending []*ingest.Pending
	for i := 0; i < 30; i++ {
		p, _, err := f.p.Submit(ctx, f.batches(int32(i%2), 1))
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, p)
	}
	close(bs.release)
	for i, p := range pending {
		if r := wait(t, p)[0]; r.Err != nil {
			t.Fatalf("batch %d: %v", i, r.Err)
		}
	}
	var objects int
	err := f.bucket.List(ctx, "", func(a objectstore.Attrs) error {
		objects++
		r, err := segment.Open(ctx, f.bucket, a.Key)
		if err != nil {
			return err
		}
		var data int64
		for _, c := range r.Chunks() {
			data += c.Length
		}
		if data > flushBytes {
			t.Errorf("object %s carries %d bytes of batches, more than flush.bytes %d", a.Key, data, flushBytes)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if objects < 10 {
		t.Fatalf("%d objects for 30 batches of a third of flush.bytes each, want at least 10", objects)
	}
}
