package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/segment"
)

// flush is one cut of the buffer on its way to the bucket and the store.
type flush struct {
	key      string
	recorded bool // key came from the reserve: its upload is recorded
	entries  []*entry
	obj      []byte
	chunks   []segment.ChunkInfo
	reserved int64         // bytes to give back to the buffer budget
	cut      time.Time     // when the buffer was cut, for metrics
	uploaded chan struct{} // closed when the object is in the bucket
}

// flusher turns buffer cuts into segment objects and uploads them; uploads
// of consecutive flushes overlap. Its commit loop commits them strictly in
// the order they were cut, so commit order (= offset order) is append order.
type flusher struct {
	agentID string
	buf     *buffer
	bucket  objectstore.Bucket // writes through to the cache
	store   Store
	obs     Observer
	log     *slog.Logger
	uploads chan struct{} // semaphore: concurrent uploads
	ordered chan *flush   // to the commit loop, in cut order
	seq     atomic.Int64
	keys    keyReserve
	stats   *Stats
	metrics *Metrics
}

func newFlusher(cfg Config, buf *buffer, bucket objectstore.Bucket, store Store, obs Observer, stats *Stats, m *Metrics) *flusher {
	return &flusher{
		agentID: cfg.AgentID,
		buf:     buf,
		bucket:  bucket,
		store:   store,
		obs:     obs,
		log:     cfg.Logger,
		uploads: make(chan struct{}, cfg.MaxUploads),
		ordered: make(chan *flush, cfg.MaxUploads),
		stats:   stats,
		metrics: m,
	}
}

// run cuts the buffer whenever it is kicked, until the buffer is closed and
// drained; then it closes the commit loop's queue. ctx cancellation is a
// hard stop: uploads and commits in progress give up.
func (f *flusher) run(ctx context.Context) {
	defer close(f.ordered)
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.buf.kick:
		}
		closed, _ := f.buf.state()
		if es := f.buf.cut(closed); es != nil {
			fl := f.build(es)
			select {
			case f.uploads <- struct{}{}:
			case <-ctx.Done():
				f.fail(fl, ctx.Err())
				return
			}
			go f.upload(ctx, fl)
			f.ordered <- fl
		}
		if closed {
			if _, empty := f.buf.state(); empty {
				return
			}
			f.buf.signal()
		}
	}
}

// build lays the entries out as one segment object.
func (f *flusher) build(es []*entry) *flush {
	w := segment.NewWriter()
	var reserved int64
	for _, e := range es {
		w.Append(segment.TopicRef{ID: e.TP.Topic, Name: e.TopicName, Partition: e.TP.Partition}, e.Data, e.Header)
		reserved += e.size
		e.Data = nil // the object holds the bytes now
	}
	obj, chunks := w.Finish()
	key, recorded := f.keys.take()
	if !recorded {
		key = f.segmentKey()
	}
	return &flush{
		key:      key,
		recorded: recorded,
		entries:  es,
		obj:      obj,
		chunks:   chunks,
		reserved: reserved,
		cut:      time.Now(),
		uploaded: make(chan struct{}),
	}
}

// segmentKey names a new object. The leading time keeps keys of one agent
// in write order for people listing the bucket.
func (f *flusher) segmentKey() string {
	id := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, f.agentID)
	return fmt.Sprintf("segments/%d-%s-%d.seg", time.Now().UnixMilli(), id, f.seq.Add(1))
}

// upload records the upload intent, then puts the object, retrying both
// until they succeed or ctx ends.
func (f *flusher) upload(ctx context.Context, fl *flush) {
	defer func() { <-f.uploads }()
	defer close(fl.uploaded)
	if !fl.recorded {
		retry(ctx, f.log, "record upload "+fl.key, func() error {
			return f.recordWithReserve(ctx, fl.key)
		})
	}
	start := time.Now()
	put := f.bucket.Put
	if o, ok := f.bucket.(ownedPutter); ok {
		put = o.PutOwned // nothing touches fl.obj after the upload
	}
	retry(ctx, f.log, "upload segment "+fl.key, func() error {
		return put(ctx, fl.key, fl.obj)
	})
	d := time.Since(start)
	f.stats.Flushes.Add(1)
	f.stats.FlushBytes.Add(int64(len(fl.obj)))
	f.stats.UploadNanos.Add(int64(d))
	f.metrics.flushBytes.Observe(float64(len(fl.obj)))
	f.metrics.uploadSeconds.Observe(d.Seconds())
}

// ownedPutter is a bucket that can keep an uploaded object instead of
// copying it (cache.Bucket, which fills itself with what is written
// through it): the segment is then in memory once, as the cache's blocks.
type ownedPutter interface {
	PutOwned(ctx context.Context, key string, data []byte) error
}

// fail frees fl's budget and answers every entry with err.
func (f *flusher) fail(fl *flush, err error) {
	f.buf.release(fl.reserved)
	for _, e := range fl.entries {
		e.finish(-1, err)
	}
}

// commitLoop commits every flush the flusher hands over, in order, until
// the flusher closes its queue.
func (f *flusher) commitLoop(ctx context.Context) {
	for fl := range f.ordered {
		select {
		case <-fl.uploaded:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			f.fail(fl, ctx.Err())
			continue
		}
		f.commit(ctx, fl)
	}
}

// commit records fl in the store and answers its submitters. Chunks of
// partitions that vanished (topic deleted) are dropped and answered with
// metastore.ErrUnknownTopic; the rest commit. Chunks holding idempotent
// producers' batches are committed batch by batch, so the store can check
// sequences.
func (f *flusher) commit(ctx context.Context, fl *flush) {
	// Entries per partition, in append order: the order of the chunk's
	// batches in the object.
	byTP := make(map[metastore.TopicPartition][]*entry)
	for _, e := range fl.entries {
		byTP[e.TP] = append(byTP[e.TP], e)
	}
	chunks := make([]metastore.Chunk, 0, len(fl.chunks))
	for _, ch := range fl.chunks {
		tp := metastore.TopicPartition{Topic: ch.TopicID, Partition: ch.Partition}
		chunks = append(chunks, metastore.Chunk{
			TopicPartition: tp,
			Position:       ch.Position,
			Length:         ch.Length,
			OffsetCount:    ch.OffsetCount,
			BatchCount:     ch.BatchCount,
			MinTimestamp:   ch.MinTimestamp,
			MaxTimestamp:   ch.MaxTimestamp,
			Batches:        producerBatches(ch.Position, byTP[tp]),
		})
	}
	dropped := make(map[metastore.TopicPartition]bool)
	var res metastore.FlushResult
	start := time.Now()
	err := retry(ctx, f.log, "commit segment "+fl.key, func() error {
		if len(chunks) == 0 {
			res = metastore.FlushResult{} // every partition vanished; the object is an orphan now
			return nil
		}
		var err error
		res, err = f.store.CommitFlush(ctx, metastore.Flush{SegmentKey: fl.key, AgentID: f.agentID, Size: int64(len(fl.obj)), Chunks: chunks})
		var unknown *metastore.UnknownPartitionsError
		if errors.As(err, &unknown) {
			for _, tp := range unknown.Partitions {
				dropped[tp] = true
				f.obs.Vanished(tp.Topic)
			}
			kept := chunks[:0]
			for _, ch := range chunks {
				if !dropped[ch.TopicPartition] {
					kept = append(kept, ch)
				}
			}
			chunks = kept
		}
		return err
	})
	if err != nil {
		// Nothing was committed, and retrying cannot change that. The
		// producers get an error (their clients retry), and later flushes
		// go on: one bad flush must not wedge the ordered pipeline.
		f.log.Error("flush cannot be committed; producers get an error", "segment", fl.key, "err", err)
		if errors.Is(err, metastore.ErrUploadNotRecorded) {
			// The collector doomed the upload record (it took a reserved
			// key for an orphan), perhaps before this object was written:
			// queue it again so the collector deletes what we wrote, after
			// its grace, by the one deletion path. Best effort: an object
			// it misses is an untracked leak, never a lost record.
			if derr := f.store.AbandonUpload(ctx, fl.key); derr != nil {
				f.log.Warn("queue segment that can never commit for deletion", "segment", fl.key, "err", derr)
			}
		}
		f.fail(fl, err)
		return
	}
	if ctx.Err() != nil {
		f.fail(fl, ctx.Err())
		return
	}
	// The budget is free before anyone is answered: a producer that sends
	// its next request on the ack finds room.
	f.buf.release(fl.reserved)
	d := time.Since(start)
	f.stats.Commits.Add(1)
	f.stats.CommitNanos.Add(int64(d))
	f.metrics.commitSeconds.Observe(d.Seconds())

	for i, ch := range chunks {
		es := byTP[ch.TopicPartition]
		if ch.Batches != nil {
			results := res.Batches[i]
			transactional := false
			for _, b := range ch.Batches {
				transactional = transactional || b.IsTransactional
			}
			f.obs.Committed(ch.TopicPartition, metastore.IndexRuns(ch.TopicPartition, fl.key, ch.Batches, results), transactional)
			for j, e := range es {
				e.finish(results[j].BaseOffset, results[j].Err) // a duplicate succeeds with its first offset
			}
			continue
		}
		f.obs.Committed(ch.TopicPartition, []metastore.IndexEntry{{
			TopicPartition: ch.TopicPartition,
			BaseOffset:     res.BaseOffsets[i],
			LastOffset:     res.BaseOffsets[i] + ch.OffsetCount - 1,
			SegmentKey:     fl.key,
			Position:       ch.Position,
			Length:         ch.Length,
			BatchCount:     ch.BatchCount,
			MinTimestamp:   ch.MinTimestamp,
			MaxTimestamp:   ch.MaxTimestamp,
		}}, false)
		// Within a chunk, batches follow in append order.
		base := res.BaseOffsets[i]
		for _, e := range es {
			e.finish(base, nil)
			base += e.Header.OffsetCount()
		}
	}
	for tp := range dropped {
		for _, e := range byTP[tp] {
			e.finish(-1, metastore.ErrUnknownTopic)
		}
	}
	f.metrics.flushSeconds.Observe(time.Since(fl.cut).Seconds())
}

// producerBatches describes a chunk's batches for the store's sequence
// check, or returns nil if none comes from an idempotent producer (then the
// chunk commits as one row, the cheap path).
func producerBatches(chunkPos int64, es []*entry) []metastore.ProducerBatch {
	idempotent := false
	for _, e := range es {
		idempotent = idempotent || e.Header.ProducerID >= 0
	}
	if !idempotent {
		return nil
	}
	out := make([]metastore.ProducerBatch, len(es))
	pos := chunkPos
	for i, e := range es {
		h := e.Header
		out[i] = metastore.ProducerBatch{
			Position: pos, Length: e.size, OffsetCount: h.OffsetCount(),
			MinTimestamp: h.FirstTimestamp, MaxTimestamp: h.MaxTimestamp,
			ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, BaseSequence: h.BaseSequence,
			IsTransactional: h.IsTransactional(), IsControl: h.IsControl(), Abort: e.Abort,
		}
		pos += e.size
	}
	return out
}
