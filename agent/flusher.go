package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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

// Flusher turns buffer cuts into segment objects and uploads them; uploads
// of consecutive flushes overlap. The committer commits them strictly in the
// order they were cut, so commit order (= offset order) is append order.
type Flusher struct {
	agentID string
	buf     *Buffer
	bucket  objectstore.Bucket // writes through to the cache
	store   metastore.Store
	log     *slog.Logger
	uploads chan struct{} // semaphore: concurrent uploads
	ordered chan *flush   // to the committer, in cut order
	seq     atomic.Int64
	keys    keyReserve
	stats   *Stats
}

func newFlusher(agentID string, buf *Buffer, bucket objectstore.Bucket, store metastore.Store, maxUploads int, log *slog.Logger, stats *Stats) *Flusher {
	return &Flusher{
		agentID: agentID,
		buf:     buf,
		bucket:  bucket,
		store:   store,
		log:     log,
		uploads: make(chan struct{}, maxUploads),
		ordered: make(chan *flush, maxUploads),
		stats:   stats,
	}
}

// run cuts the buffer whenever it is kicked, until the buffer is closed and
// drained; then it closes the committer's queue. ctx cancellation is a hard
// stop: uploads and commits in progress give up.
func (f *Flusher) run(ctx context.Context) {
	defer close(f.ordered)
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.buf.kick:
		}
		f.buf.mu.Lock()
		closed := f.buf.closed
		f.buf.mu.Unlock()
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
			f.buf.mu.Lock()
			empty := len(f.buf.entries) == 0
			f.buf.mu.Unlock()
			if empty {
				return
			}
			f.buf.signal()
		}
	}
}

// build lays the entries out as one segment object.
func (f *Flusher) build(es []*entry) *flush {
	w := segment.NewWriter()
	var reserved int64
	for _, e := range es {
		w.Append(segment.TopicRef{ID: e.p.tp.Topic, Name: e.p.topic, Partition: e.p.index}, e.data, e.hdr)
		e.size = int64(len(e.data))
		reserved += e.size
		e.data = nil // the object holds the bytes now
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
func (f *Flusher) segmentKey() string {
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
func (f *Flusher) upload(ctx context.Context, fl *flush) {
	defer func() { <-f.uploads }()
	defer close(fl.uploaded)
	if !fl.recorded {
		retry(ctx, f.log, "record upload "+fl.key, func() error {
			return f.recordWithReserve(ctx, fl.key)
		})
	}
	start := time.Now()
	retry(ctx, f.log, "upload segment "+fl.key, func() error {
		return f.bucket.Put(ctx, fl.key, fl.obj)
	})
	f.stats.observeUpload(len(fl.obj), time.Since(start))
}

// fail answers every entry of fl with err and frees its budget.
func (f *Flusher) fail(fl *flush, err error) {
	for _, e := range fl.entries {
		e.finish(-1, err)
	}
	f.buf.release(fl.reserved)
}

// Committer commits uploaded flushes in order.
type Committer struct {
	flusher *Flusher
	topics  *topics
}

// run commits every flush the flusher hands over, in order, until the
// flusher closes its queue.
func (c *Committer) run(ctx context.Context) {
	f := c.flusher
	for fl := range f.ordered {
		select {
		case <-fl.uploaded:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			f.fail(fl, ctx.Err())
			continue
		}
		c.commit(ctx, fl)
	}
}

// commit records fl in the store and answers its producers. Chunks of
// partitions that vanished (topic deleted) are dropped and answered with
// errUnknownTopic; the rest commit. Chunks holding idempotent producers'
// batches are committed batch by batch, so the store can check sequences.
func (c *Committer) commit(ctx context.Context, fl *flush) {
	f := c.flusher
	// Entries per partition, in append order: the order of the chunk's
	// batches in the object.
	byTP := make(map[metastore.TopicPartition][]*entry)
	for _, e := range fl.entries {
		byTP[e.p.tp] = append(byTP[e.p.tp], e)
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
				c.topics.dropID(tp.Topic) // deleted elsewhere: forget it
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
		// The upload record is gone (the janitor took it for an orphan, so
		// the object may be deleted): this flush can never commit.
		f.log.Error("flush cannot be committed; producers get an error", "segment", fl.key, "err", err)
		f.fail(fl, err)
		return
	}
	if ctx.Err() != nil {
		f.fail(fl, ctx.Err())
		return
	}
	f.stats.observeCommit(time.Since(start))

	for i, ch := range chunks {
		p := c.topics.partitionOf(ch.TopicPartition)
		es := byTP[ch.TopicPartition]
		if ch.Batches != nil {
			results := res.Batches[i]
			for j, e := range es {
				r := results[j]
				e.finish(r.BaseOffset, r.Err) // a duplicate succeeds with its first offset
			}
			if p != nil {
				for _, row := range metastore.IndexRuns(ch.TopicPartition, fl.key, ch.Batches, results) {
					p.committed(row)
				}
				for _, b := range ch.Batches {
					if b.IsTransactional {
						p.lsoChanged() // the store knows the new LSO; read it when needed
						break
					}
				}
			}
			continue
		}
		// Within a chunk, batches follow in append order.
		base := res.BaseOffsets[i]
		for _, e := range es {
			e.finish(base, nil)
			base += e.hdr.OffsetCount()
		}
		if p != nil {
			p.committed(metastore.IndexEntry{
				TopicPartition: ch.TopicPartition,
				BaseOffset:     res.BaseOffsets[i],
				LastOffset:     res.BaseOffsets[i] + ch.OffsetCount - 1,
				SegmentKey:     fl.key,
				Position:       ch.Position,
				Length:         ch.Length,
				BatchCount:     ch.BatchCount,
				MinTimestamp:   ch.MinTimestamp,
				MaxTimestamp:   ch.MaxTimestamp,
			})
		}
	}
	for tp := range dropped {
		for _, e := range byTP[tp] {
			e.finish(-1, errUnknownTopic)
		}
	}
	f.buf.release(fl.reserved)
	f.stats.observeFlushed(time.Since(fl.cut))
}

// producerBatches describes a chunk's batches for the store's sequence
// check, or returns nil if none comes from an idempotent producer (then the
// chunk commits as one row, the cheap path).
func producerBatches(chunkPos int64, es []*entry) []metastore.ProducerBatch {
	idempotent := false
	for _, e := range es {
		idempotent = idempotent || e.hdr.ProducerID >= 0
	}
	if !idempotent {
		return nil
	}
	out := make([]metastore.ProducerBatch, len(es))
	pos := chunkPos
	for i, e := range es {
		out[i] = metastore.ProducerBatch{
			Position: pos, Length: e.size, OffsetCount: e.hdr.OffsetCount(),
			MinTimestamp: e.hdr.FirstTimestamp, MaxTimestamp: e.hdr.MaxTimestamp,
			ProducerID: e.hdr.ProducerID, ProducerEpoch: e.hdr.ProducerEpoch, BaseSequence: e.hdr.BaseSequence,
			IsTransactional: e.hdr.IsTransactional(), IsControl: e.hdr.IsControl(), Abort: e.abort,
		}
		pos += e.size
	}
	return out
}

// retry calls fn until it succeeds or ctx ends, backing off exponentially
// with jitter (50 ms doubling to 5 s). An outage of the bucket or the store
// is logged and waited out, never fatal. The one error no retry can mend,
// metastore.ErrUploadNotRecorded, is returned.
func retry(ctx context.Context, log *slog.Logger, what string, fn func() error) error {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			if attempt > 1 {
				log.Info("recovered", "op", what, "attempts", attempt)
			}
			return nil
		}
		var unknown *metastore.UnknownPartitionsError
		if errors.As(err, &unknown) {
			continue // fn dropped the unknown partitions; try the rest at once
		}
		if errors.Is(err, metastore.ErrUploadNotRecorded) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("retrying", "op", what, "attempt", attempt, "err", err)
		sleep := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-time.After(sleep):
		case <-ctx.Done():
			return nil
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
