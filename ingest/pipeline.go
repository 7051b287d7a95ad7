package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/segment"
)

// Batch is one Kafka record batch for one partition: validated by the
// caller, in the v2 format, its base offset a placeholder that the commit
// assigns.
type Batch struct {
	TP        metastore.TopicPartition
	TopicName string // written into the segment's index footer
	Data      []byte // the pipeline owns it once submitted
	Header    segment.BatchHeader
	// Abort marks a control batch (transaction marker) as an abort marker;
	// other control batches are commit markers.
	Abort bool
}

// Result is the outcome of one submitted batch.
type Result struct {
	BaseOffset int64 // -1 on error
	Err        error
}

// Pending is a Submit whose batches are on their way to the bucket.
type Pending struct {
	results []Result
	left    atomic.Int64
	done    chan struct{}
}

// Done is closed when every batch has a result.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Results are the batches' outcomes in Submit order; read them only after
// Done is closed.
func (p *Pending) Results() []Result { return p.results }

// Wait waits for Done or ctx.
func (p *Pending) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Pending) finish(i int, base int64, err error) {
	p.results[i] = Result{BaseOffset: base, Err: err}
	if p.left.Add(-1) == 0 {
		close(p.done)
	}
}

// Observer learns what committed, in commit order, before submitters are
// answered: the partition cache moves high watermarks and wakes long polls.
type Observer interface {
	// Committed reports index rows committed for tp. transactional says the
	// rows hold transactional data or markers, which may move the last
	// stable offset.
	Committed(tp metastore.TopicPartition, rows []metastore.IndexEntry, transactional bool)
	// Vanished reports a topic the store no longer has (deleted elsewhere);
	// its batches were answered with metastore.ErrUnknownTopic.
	Vanished(topic metastore.TopicID)
}

// Store is what the pipeline needs from the metastore.
type Store interface {
	RecordUploads(ctx context.Context, keys []string, agentID string) error
	AbandonUpload(ctx context.Context, key string) error
	CommitFlush(ctx context.Context, f metastore.Flush) (metastore.FlushResult, error)
}

// Config configures a Pipeline.
type Config struct {
	AgentID       string        // names segment keys and upload records
	FlushInterval time.Duration // flush.interval
	FlushBytes    int64         // flush.bytes
	// BufferBytes bounds bytes held in memory: buffered, uploading and
	// committing (buffer.bytes).
	BufferBytes int64
	// Reserve is the part of BufferBytes left unused, for the runtime's
	// own memory (see cmd/silt's memory plan); 0: none.
	Reserve    int64
	MaxUploads int // flush.max.uploads: concurrent segment uploads
	Logger     *slog.Logger
}

// Validate checks c; errors name the config key.
func (c Config) Validate() error {
	switch {
	case c.FlushInterval <= 0:
		return fmt.Errorf("flush.interval: must be positive, got %v", c.FlushInterval)
	case c.FlushBytes <= 0:
		return fmt.Errorf("flush.bytes: must be positive, got %d", c.FlushBytes)
	case c.BufferBytes < 3*c.FlushBytes:
		// Two flushes' room for building a segment, at least one for batches.
		return fmt.Errorf("buffer.bytes: must be at least three times flush.bytes (%d), got %d", c.FlushBytes, c.BufferBytes)
	case c.Reserve < 0 || c.BufferBytes-c.Reserve < 3*c.FlushBytes:
		return fmt.Errorf("buffer.bytes: a reserve of %d leaves less than three times flush.bytes (%d) of %d", c.Reserve, c.FlushBytes, c.BufferBytes)
	case c.MaxUploads < 1:
		return fmt.Errorf("flush.max.uploads: must be at least 1, got %d", c.MaxUploads)
	}
	return nil
}

// Stats are the pipeline's cumulative counters.
type Stats struct {
	Flushes       atomic.Int64
	FlushBytes    atomic.Int64
	UploadNanos   atomic.Int64
	Commits       atomic.Int64
	CommitNanos   atomic.Int64
	UploadRecords atomic.Int64 // store calls recording upload keys (one per keyBatch flushes)
}

var (
	// ErrTooLarge: the batches of one Submit exceed the whole buffer budget
	// and could never fit (MESSAGE_TOO_LARGE).
	ErrTooLarge = errors.New("batches exceed the write buffer")
	// ErrClosed: the pipeline is shutting down and takes no more batches.
	ErrClosed = errors.New("write pipeline is closed")
)

// Pipeline is the write path of one agent.
type Pipeline struct {
	buf     *buffer
	fl      *flusher
	metrics *Metrics
	wg      sync.WaitGroup
}

// New builds a pipeline. It takes batches at once; Run moves them to the
// bucket and the store.
func New(cfg Config, bucket objectstore.Bucket, store Store, obs Observer, stats *Stats) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if stats == nil {
		stats = new(Stats)
	}
	m := newMetrics()
	// Request frames, buffered batches and segments share buffer.bytes
	// less two flushes. Building a segment copies up to flush.bytes of
	// batches, which are in memory twice until the copy is done; then the
	// batches are garbage until the collector runs. Both must fit in
	// buffer.bytes, less the runtime's reserve, for the agent's memory to
	// stay within its budgets (see cmd/silt's memory plan).
	buf := newBuffer(cfg.FlushInterval, cfg.FlushBytes, cfg.BufferBytes-cfg.Reserve-2*cfg.FlushBytes)
	return &Pipeline{
		buf:     buf,
		fl:      newFlusher(cfg, buf, bucket, store, obs, stats, m),
		metrics: m,
	}, nil
}

// Metrics returns the pipeline's Prometheus collectors.
func (p *Pipeline) Metrics() *Metrics { return p.metrics }

// Run flushes and commits until Close drains the buffer or ctx ends. A ctx
// that ends is a hard stop: what is buffered, uploading or committing fails
// with the context's error.
func (p *Pipeline) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.fl.run(ctx) }()
	go func() { defer wg.Done(); p.fl.commitLoop(ctx) }()
	wg.Wait()
}

// Close stops taking batches; what is buffered is still flushed, and Run
// returns once it is committed.
func (p *Pipeline) Close() { p.buf.close() }

// BufferBytes returns the buffer budget in use and its limit (Limit).
func (p *Pipeline) BufferBytes() (inUse, limit int64) { return p.buf.inUse.Load(), p.buf.memMax }

// Waiting returns how many Submits are waiting for room in the buffer.
func (p *Pipeline) Waiting() int64 { return p.buf.waiting.Load() }

// Submit reserves room for batches (waiting while the buffer budget is used
// up, until ctx ends), then buffers them in order. It returns how long it
// was held back (for throttle_time_ms) and a Pending that completes when
// every batch has committed or failed. Errors: ErrTooLarge, ErrClosed, or
// ctx's error while waiting for room; then nothing was buffered.
func (p *Pipeline) Submit(ctx context.Context, batches []Batch) (*Pending, time.Duration, error) {
	return p.SubmitReserved(ctx, batches, 0)
}

// SubmitReserved is Submit for a caller that already holds reserved bytes
// of the buffer budget (Acquire), which it hands over: whatever happens,
// the Pipeline releases them. Only what the batches lack is waited for.
func (p *Pipeline) SubmitReserved(ctx context.Context, batches []Batch, reserved int64) (*Pending, time.Duration, error) {
	pd := &Pending{results: make([]Result, len(batches)), done: make(chan struct{})}
	var size int64
	for _, b := range batches {
		size += int64(len(b.Data))
	}
	if size > p.buf.memMax {
		p.buf.release(reserved)
		return nil, 0, ErrTooLarge
	}
	var throttled time.Duration
	switch {
	case size < reserved: // a frame holds more than its batches
		p.buf.release(reserved - size)
	case size > reserved:
		var err error
		if throttled, err = p.buf.reserve(ctx, size-reserved); err != nil {
			p.buf.release(reserved)
			return nil, throttled, err
		}
	}
	if len(batches) == 0 {
		close(pd.done)
		return pd, throttled, nil
	}
	pd.left.Store(int64(len(batches)))
	es := make([]*entry, len(batches))
	for i := range batches {
		es[i] = &entry{Batch: batches[i], size: int64(len(batches[i].Data)), pending: pd, slot: i}
	}
	if !p.buf.append(es) {
		p.buf.release(size)
		return nil, throttled, ErrClosed
	}
	return pd, throttled, nil
}

// Acquire reserves n bytes of the buffer budget, waiting for room until
// ctx ends. With Release and Limit it lets the Kafka server reserve a
// Produce frame's bytes before reading it (wire.Budget), so frames waiting
// to be read count against buffer.bytes too.
func (p *Pipeline) Acquire(ctx context.Context, n int64) error {
	_, err := p.buf.reserve(ctx, n)
	return err
}

// Release returns n bytes taken with Acquire and not handed to
// SubmitReserved.
func (p *Pipeline) Release(n int64) { p.buf.release(n) }

// Limit is the budget frames, batches and segments share: buffer.bytes
// less twice flush.bytes, the room a flush's copy and its garbage need.
func (p *Pipeline) Limit() int64 { return p.buf.memMax }
