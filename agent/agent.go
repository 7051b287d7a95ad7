package agent

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/siltstream/silt/cache"
	"github.com/siltstream/silt/group"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/wire"
)

// Agent is one Silt broker process's Kafka-facing behaviour.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	store   metastore.Store
	bucket  *cache.Bucket
	topics  *topics
	buf     *Buffer
	fl      *Flusher
	commit  *Committer
	server  *wire.Server
	nodeID  int32
	host    string
	port    int32
	stats   Stats
	members *membership
	groups  *group.Coordinator
	txns    *txnCoordinator
	lag     *lagReporter

	runCtx    context.Context // cancelled on hard stop
	runCancel context.CancelFunc
	wg        sync.WaitGroup // the flusher and the committer
	bg        sync.WaitGroup // background jobs, stopped with runCtx
	closeOnce sync.Once
}

// New builds an agent over an opened bucket and store. It does not listen
// until Serve.
func New(cfg Config, bucket objectstore.Bucket, store metastore.Store) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, portStr, _ := net.SplitHostPort(cfg.Advertise)
	port, err := strconv.ParseInt(portStr, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("advertise: port %q: %v", portStr, err)
	}
	cb, err := cache.New(bucket, cache.Config{
		BlockSize:       cfg.CacheBlockBytes,
		MemoryBytes:     cfg.CacheMemoryBytes,
		DiskDir:         cfg.CacheDiskDir,
		DiskBytes:       cfg.CacheDiskBytes,
		ReadAheadBlocks: cfg.CacheReadAheadBlocks,
	})
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:    cfg,
		log:    cfg.Logger.With("agent", cfg.ID),
		store:  store,
		bucket: cb,
		topics: newTopics(store),
		nodeID: nodeIDOf(cfg.ID),
		host:   host,
		port:   int32(port),
	}
	a.buf = newBuffer(cfg.FlushInterval, cfg.FlushBytes, cfg.BufferBytes)
	a.fl = newFlusher(cfg.ID, a.buf, cb, store, cfg.MaxUploads, a.log, &a.stats)
	a.commit = &Committer{flusher: a.fl, topics: a.topics}

	wcfg := wire.DefaultConfig()
	wcfg.MaxRequestBytes = cfg.MaxRequestBytes
	wcfg.Logger = a.log
	a.stats.m = newMetrics()
	wcfg.Observe = a.stats.m.observeRequest
	a.server, err = wire.NewServer(wcfg, a.registry())
	if err != nil {
		cb.Stop()
		return nil, err
	}
	a.members = newMembership(a)
	a.groups = group.NewCoordinator(group.Config{Store: store, IsCoordinator: a.isCoordinator, Partitions: a.partitionCount, Log: a.log})
	a.txns = newTxnCoordinator(a)
	a.lag = &lagReporter{a: a}
	a.runCtx, a.runCancel = context.WithCancel(context.Background())
	a.wg.Add(2)
	go func() { defer a.wg.Done(); a.fl.run(a.runCtx) }()
	go func() { defer a.wg.Done(); a.commit.run(a.runCtx) }()
	j := &Janitor{AgentID: cfg.ID, Store: store, Bucket: cb, Log: a.log, Interval: cfg.JanitorInterval, MinAge: cfg.OrphanMinAge}
	a.bg.Add(1)
	go func() { defer a.bg.Done(); j.Run(a.runCtx) }()
	return a, nil
}

// nodeIDOf derives a stable, non-negative Kafka node id from an agent id.
func nodeIDOf(id string) int32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int32(h.Sum32() & 0x7fffffff)
}

// Stats returns the agent's counters.
func (a *Agent) Stats() *Stats { return &a.stats }

// Serve answers Kafka clients on ln until Shutdown or Close.
func (a *Agent) Serve(ln net.Listener) error {
	ctx, cancel := context.WithTimeout(a.runCtx, 10*time.Second)
	if err := a.topics.refresh(ctx); err != nil {
		a.log.Warn("initial topic load failed; topics load on demand", "err", err)
	}
	if err := a.members.join(ctx); err != nil {
		a.log.Warn("joining the cluster failed; retrying with each heartbeat", "err", err)
	}
	cancel()
	a.bg.Add(1)
	go func() { defer a.bg.Done(); a.members.run(a.runCtx) }()
	a.bg.Add(1)
	go func() { defer a.bg.Done(); a.groups.Run(a.runCtx) }()
	a.bg.Add(1)
	go func() { defer a.bg.Done(); a.txns.run(a.runCtx) }()
	a.bg.Add(1)
	go func() { defer a.bg.Done(); a.lag.run(a.runCtx) }()
	if w, ok := a.store.(metastore.CommitWatcher); ok {
		a.bg.Add(1)
		go func() { defer a.bg.Done(); a.watchCommits(a.runCtx, w) }()
	}
	a.log.Info("serving Kafka", "listen", ln.Addr().String(), "advertise", a.cfg.Advertise, "node_id", a.nodeID)
	return a.server.Serve(ln)
}

// Shutdown stops gracefully: stop taking requests, flush and commit what is
// buffered, answer what is in flight. After ctx ends it stops hard.
func (a *Agent) Shutdown(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	a.members.leave(lctx) // stop being listed first, so clients move on
	a.groups.Close()      // answer parked joins: clients find the next coordinator
	cancel()
	a.buf.close()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	srvErr := make(chan error, 1)
	go func() { srvErr <- a.server.Shutdown(ctx) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("shutdown: flushes did not finish in time: %w", ctx.Err())
	}
	a.runCancel()
	<-done
	a.bg.Wait()
	serr := <-srvErr
	a.bucket.Stop() // nothing reads any more: stop read-ahead, finish disk writes
	if serr != nil && err == nil && !errors.Is(serr, context.Canceled) {
		err = serr
	}
	return err
}

// Close stops at once. Buffered, unacknowledged produce requests fail.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		a.groups.Close()
		a.buf.close()
		a.runCancel()
		a.server.Close()
		a.wg.Wait()
		a.bg.Wait()
		a.bucket.Stop() // the caller closes the bucket under it
	})
	return nil
}
