package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/siltstream/silt/auth"
	"github.com/siltstream/silt/auth/acl"
	"github.com/siltstream/silt/cache"
	"github.com/siltstream/silt/cluster"
	"github.com/siltstream/silt/group"
	"github.com/siltstream/silt/ingest"
	"github.com/siltstream/silt/jobs"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/partition"
	"github.com/siltstream/silt/quota"
	"github.com/siltstream/silt/txn"
	"github.com/siltstream/silt/wire"
)

// compactionExpiryGraces: data retention expires within this many
// gc.graces is not compacted (jobs.Compactor.ExpiryHorizon). A compacted
// byte is in the bucket twice for a gc.grace (its flush segment goes only
// then) and its compacted segment expires whole, so under retention R the
// bucket holds about rate × (R + 2 grace + interval + half a compacted
// segment's span) against the 1.3 × rate × (R + interval + grace) the
// lifecycle issue allows. Measured with gc.grace 30 s (docs/benchmarks.md):
// compacting everything held 1.31-1.57 times at R one minute; with 4
// graces, R = 2.5 minutes (just past it) was compacted and peaked at 0.99
// of the bound by time and 1.01 by bytes. Six leaves the smallest R that
// is compacted about 7% under the bound by that estimate: at the default
// gc.grace, topics kept under 30 minutes are served from their flush
// segments.
const compactionExpiryGraces = 6

// Agent is one Silt broker process: the Kafka API handlers over the parts
// that do the work. Each part gets only what it uses; none of them knows the
// Agent.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	store  metastore.Store
	bucket *cache.Bucket     // the caller's; the agent reads and writes through it
	topics *partition.Topics // read-side state of every partition

	groupTopicsMu sync.Mutex          // guards groupTopicsAt
	groupTopicsAt time.Time           // when groupTopics last refreshed the topics
	reader        *partition.Reader   // the fetch read path
	fetchSessions *fetchSessions      // KIP-227
	shareSessions *shareSessions      // KIP-932
	groupConfigs  groupConfigCache    // group configs as last read
	ingest        *ingest.Pipeline    // the write path: produce and markers
	members       *cluster.Membership // live agents and placement
	groups        *group.Coordinator  // consumer groups this agent coordinates
	txns          *txn.Coordinator    // transactional ids this agent coordinates
	offsets       *group.OffsetLog    // committed offsets as __consumer_offsets
	internal      internalTopics      // __consumer_offsets, __transaction_state
	lag           *jobs.LagReporter   // consumer lag, on the elected agent
	janitor       *jobs.Janitor       // retention, garbage collection, expiries, under a lease
	jobMetrics    *jobs.Metrics
	compactor     *jobs.Compactor // the partitions this agent leads
	acls          *acl.Authorizer // nil unless authorizer=acl
	quotas        *quota.Enforcer // client quotas, enforced on this agent's traffic
	server        *wire.Server
	tls           *wire.TLS           // SSL and SASL_SSL listeners' TLS; nil without them
	auth          *auth.Authenticator // nil without SASL
	start         sync.Once           // the work of the first Serve
	startErr      error               // why the first Serve refused to serve
	stats         Stats
	reqs          *requestMetrics

	runCtx    context.Context // cancelled on hard stop
	runCancel context.CancelFunc
	pipeline  sync.WaitGroup // the write pipeline
	bg        sync.WaitGroup // background jobs, stopped with runCtx
	closeOnce sync.Once
}

// New builds an agent over a block cache (wrapping the bucket) and a store.
// The caller owns both: it stops the cache and closes the store after the
// agent has stopped. New does not listen until Serve.
func New(cfg Config, bucket *cache.Bucket, store metastore.Store) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("agent", cfg.ID)
	a := &Agent{
		cfg:    cfg,
		log:    log,
		store:  store,
		bucket: bucket,
		topics: partition.NewTopics(store),
		reqs:   newRequestMetrics(),
	}
	if cfg.Authorizer == AuthorizerACL {
		a.acls = acl.New(acl.Config{SuperUsers: cfg.SuperUsers, AllowIfNoACL: cfg.AllowEveryoneIfNoACL}, store)
	}
	a.quotas = quota.New(quota.Config{}, store)
	a.reader = partition.NewReader(store, bucket, &a.stats.ReadStats)
	a.fetchSessions = newFetchSessions(cfg.FetchSessionSlots)
	a.shareSessions = newShareSessions(cfg.ShareSessionSlots, a.shareSessionEnded)
	var err error
	a.ingest, err = ingest.New(cfg.ingestConfig(log), bucket, store, a.topics, &a.stats.Stats)
	if err != nil {
		return nil, err
	}
	var nodeID *int32
	if cfg.NodeID >= 0 {
		nodeID = &cfg.NodeID
	}
	a.members, err = cluster.NewMembership(cluster.Config{
		AgentID: cfg.ID, NodeID: nodeID, Advertise: cfg.Advertise, Zone: cfg.Zone, Listeners: cfg.advertisedListeners(),
		Heartbeat: cfg.Heartbeat, TTL: cfg.MembershipTTL, Logger: log,
	}, store)
	if err != nil {
		return nil, err
	}
	if a.tls, err = a.newWireTLS(); err != nil {
		return nil, err
	}
	wcfg := cfg.Wire
	wcfg.Logger = log
	wcfg.Observe = a.reqs.observeRequest
	wcfg.ThrottleConnection = a.quotas.RecordConnection // connection_creation_rate
	// Produce frames reserve their bytes in the write buffer before they
	// are read, so buffer.bytes bounds every produced byte in the agent.
	wcfg.ProduceBudget = a.ingest
	if a.auth, err = a.newAuthenticator(); err != nil {
		return nil, err
	}
	if a.auth != nil { // not a typed nil in the interface
		wcfg.Authenticator = a.auth
	}
	a.server, err = wire.NewServer(wcfg, a.registry())
	if err != nil {
		return nil, err
	}
	a.offsets = group.NewOffsetLog(store)
	a.internal = newInternalTopics(a.offsets)
	signal := offsetCommitSignal{Store: store, log: a.offsets}
	a.groups = group.NewCoordinator(group.Config{
		Store: signal, IsCoordinator: a.isCoordinator, RefreshPlacement: a.members.Refresh, Partitions: a.partitionCount, Log: log,
		Topics: a.groupTopics, ConsumerSessionTimeout: cfg.ConsumerSessionTimeout, ConsumerHeartbeatInterval: cfg.ConsumerHeartbeatInterval,
		MigrationPolicy:     group.MigrationPolicy(cfg.ConsumerMigrationPolicy),
		ShareSessionTimeout: cfg.ShareSessionTimeout, ShareHeartbeatInterval: cfg.ShareHeartbeatInterval, ShareMaxSize: cfg.ShareMaxSize,
		Topic: a.groupTopic, HighWatermark: a.highWatermark, ReleaseShareMember: a.releaseShareRecords,
	})
	a.txns = txn.New(txn.Config{
		Store: signal, Markers: a.ingest, Topics: topicResolver{a.topics},
		IsCoordinator: a.isCoordinator, Logger: log,
	})
	a.lag = &jobs.LagReporter{AgentID: cfg.ID, Store: store, Log: log}
	a.jobMetrics = jobs.NewMetrics()
	a.janitor = &jobs.Janitor{
		AgentID: cfg.ID, Store: store, Log: log, Interval: cfg.CompactionInterval, ExpiryInterval: cfg.JanitorInterval,
		Retention: &jobs.Retention{Store: store, Log: log, Metrics: a.jobMetrics, OnLogStart: a.topics.LogStartMoved},
		// Deletes go through the block cache, which drops the object's
		// cached blocks.
		GC: &jobs.GC{Store: store, Bucket: bucket, Log: log, OrphanMinAge: cfg.OrphanMinAge, Grace: cfg.GCGrace, Metrics: a.jobMetrics},
	}

	a.runCtx, a.runCancel = context.WithCancel(context.Background())
	a.pipeline.Add(1)
	go func() { defer a.pipeline.Done(); a.ingest.Run(a.runCtx) }()
	// Compaction reads each old byte once and writes segments consumers
	// catching up read cold: both bypass the block cache, which keeps what
	// consumers read. (The collector's deletes go through it.)
	a.compactor = &jobs.Compactor{
		AgentID: cfg.ID, Store: store, Bucket: bucket.Next(), Log: log, Interval: cfg.CompactionInterval,
		SegmentBytes: cfg.CompactionSegmentBytes, Owns: a.compacts, Metrics: a.jobMetrics,
		KeyedMaxOffsets: jobs.DedupeMapKeys(cfg.CompactionDedupeBufferBytes),
		// Compacted data is in the bucket twice for gc.grace, and its
		// compacted segment expires whole: data that expires within a few
		// graces is left to retention (see docs/benchmarks.md, Retention).
		ExpiryHorizon: compactionExpiryGraces * cfg.GCGrace,
		Cleaner: &jobs.Cleaner{
			AgentID: cfg.ID, Store: store, Bucket: bucket.Next(), Log: log, SegmentBytes: cfg.CompactionSegmentBytes,
			DedupeBufferBytes: cfg.CompactionDedupeBufferBytes, Owns: a.compacts, Metrics: a.jobMetrics,
			// The replaced rows name records cleaning removed: this
			// agent, which leads the partition, stops reading them at once.
			OnSwap: func(r metastore.Replacement) { a.topics.IndexReplaced(r.TopicPartition) },
		},
	}
	a.goBackground(a.janitor.Run)
	if cfg.CompactionSegmentBytes > 0 {
		a.goBackground(a.compactor.Run)
	}
	return a, nil
}

// goBackground runs fn until the agent stops.
func (a *Agent) goBackground(fn func(context.Context)) {
	a.bg.Add(1)
	go func() { defer a.bg.Done(); fn(a.runCtx) }()
}

// Stats returns the agent's counters.
func (a *Agent) Stats() *Stats { return &a.stats }

// ServeListeners answers Kafka clients on lns, bound for the configured
// Listeners in order, until Shutdown or Close. It returns nil then, or the
// error of a listener that failed for good.
func (a *Agent) ServeListeners(lns ...net.Listener) error {
	if err := a.startOnce(); err != nil {
		return err
	}
	for i, ln := range lns {
		if i < len(a.cfg.Listeners) {
			l := a.cfg.Listeners[i]
			a.log.Info("serving Kafka", "listener", l.Name, "protocol", l.Protocol, "listen", ln.Addr().String(),
				"advertise", l.Advertise, "node_id", a.members.Self().NodeID)
		}
	}
	return a.serveAll(lns)
}

// Serve answers Kafka clients on ln, a PLAINTEXT listener, until Shutdown
// or Close.
func (a *Agent) Serve(ln net.Listener) error {
	return a.ServeListener(ln, wire.Listener{Name: string(wire.Plaintext), Protocol: wire.Plaintext})
}

// ServeListener answers Kafka clients on ln, secured as l says, until
// Shutdown or Close. It may be called for several listeners; the first
// call joins the cluster and starts the background work.
func (a *Agent) ServeListener(ln net.Listener, l wire.Listener) error {
	if err := a.startOnce(); err != nil {
		return err
	}
	a.log.Info("serving Kafka", "listen", ln.Addr().String(), "listener", l.Name, "protocol", l.Protocol,
		"advertise", a.cfg.Advertise, "node_id", a.members.Self().NodeID)
	return a.server.ServeListener(ln, l)
}

// startOnce runs startServing on the first call, and returns its error on
// every call.
func (a *Agent) startOnce() error {
	a.start.Do(func() { a.startErr = a.startServing() })
	return a.startErr
}

// startServing joins the cluster and starts the background work. It fails
// only when another live agent holds this agent's node id: two agents
// answering as one broker would send each other's clients astray.
func (a *Agent) startServing() error {
	// Waiting out a killed predecessor's lease on the node id takes up to
	// two membership TTLs (cluster.Membership.Start).
	ctx, cancel := context.WithTimeout(a.runCtx, 10*time.Second+2*a.cfg.MembershipTTL)
	if err := a.topics.Refresh(ctx); err != nil {
		a.log.Warn("initial topic load failed; topics load on demand", "err", err)
	}
	if err := a.members.Start(ctx); err != nil {
		var taken *metastore.NodeIDTakenError
		if errors.As(err, &taken) {
			cancel()
			return fmt.Errorf("node.id: %w; each agent needs its own node.id", taken)
		}
		a.log.Warn("joining the cluster failed; retrying with each heartbeat", "err", err)
	}
	if a.acls != nil {
		if err := a.acls.Reload(ctx); err != nil {
			a.log.Warn("initial ACL load failed; only super users pass until it succeeds", "err", err)
		}
		a.goBackground(func(ctx context.Context) {
			a.acls.Run(ctx, func(err error) { a.log.Warn("reload ACLs failed", "err", err) })
		})
	}
	if err := a.quotas.Reload(ctx); err != nil {
		a.log.Warn("initial client quota load failed; no quota applies until it succeeds", "err", err)
	}
	a.goBackground(func(ctx context.Context) {
		a.quotas.Run(ctx, func(err error) { a.log.Warn("reload client quotas failed", "err", err) })
	})
	cancel()
	a.goBackground(a.members.Run)
	// Topics created, grown or deleted through other agents show up within
	// five heartbeats.
	a.goBackground(func(ctx context.Context) {
		a.topics.RefreshEvery(ctx, 5*a.cfg.Heartbeat, func(err error) { a.log.Warn("refresh topics failed", "err", err) })
	})
	a.goBackground(a.groups.Run)
	a.goBackground(a.txns.Run)
	a.goBackground(a.lag.Run)
	if w, ok := a.store.(metastore.CommitWatcher); ok {
		if a.acls != nil {
			w = aclWatcher{CommitWatcher: w, acls: a.acls}
		}
		w = quotaWatcher{CommitWatcher: w, quotas: a.quotas}
		w = offsetsWatcher{CommitWatcher: w, log: a.offsets}
		w = membershipWatcher{CommitWatcher: w, members: a.members}
		a.goBackground(func(ctx context.Context) { a.topics.WatchCommits(ctx, w, a.cfg.ID, a.log) })
	}
	return nil
}

// Shutdown stops gracefully: stop taking requests, flush and commit what is
// buffered, answer what is in flight. After ctx ends it stops hard.
func (a *Agent) Shutdown(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	a.members.Leave(lctx) // stop being listed first, so clients move on
	a.groups.Close()      // answer parked joins: clients find the next coordinator
	cancel()
	// Keep serving until the peers have seen us leave: until then they
	// still send clients here, who must find an agent (and at most
	// NOT_COORDINATOR), not a refused connection.
	a.members.AwaitPeersSeeLeave(ctx)
	a.ingest.Close()
	done := make(chan struct{})
	go func() { a.pipeline.Wait(); close(done) }()
	a.drainClients(ctx)
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
	if serr != nil && err == nil && !errors.Is(serr, context.Canceled) {
		err = serr
	}
	return err
}

// drainClients keeps the listeners open, after the peers have seen this
// agent leave, until no client is connected, shutdown.drain has passed, or
// ctx ends. Clients whose metadata predates the leave still send requests
// here; they must get answers that move them on, not a refused connection:
// franz-go gives up a group session when its coordinator lookup dials a
// gone agent twice (once by its seed address, once by its node id). Here
// they do get such answers: Metadata without this agent, coordinator
// lookups naming another, NOT_LEADER_OR_FOLLOWER for produce (the write
// pipeline is closed) and FENCED_LEADER_EPOCH for fetches at the old
// epoch — on which clients refresh their metadata, forget this agent and
// close their connections to it, which ends the drain early.
func (a *Agent) drainClients(ctx context.Context) {
	if a.cfg.ShutdownDrain <= 0 || a.server.ConnCount() == 0 {
		return
	}
	a.log.Info("draining: answering clients that still know this agent until they move on",
		"clients", a.server.ConnCount(), "drain", a.cfg.ShutdownDrain.String())
	deadline := time.NewTimer(a.cfg.ShutdownDrain)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for a.server.ConnCount() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			a.log.Info("drained: clients still connected", "clients", a.server.ConnCount())
			return
		case <-tick.C:
		}
	}
}

// Close stops at once. Buffered, unacknowledged produce requests fail.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		a.groups.Close()
		a.ingest.Close()
		a.runCancel()
		a.server.Close()
		a.pipeline.Wait()
		a.bg.Wait()
	})
	return nil
}

// coordinatorFor returns the agent that coordinates key (a consumer group
// id or a transactional id) in this agent's current view.
func (a *Agent) coordinatorFor(key string) cluster.Broker { return a.members.CoordinatorFor(key) }

// isCoordinator reports whether this agent coordinates key.
func (a *Agent) isCoordinator(key string) bool { return a.members.IsCoordinator(key) }

// nodeID is this agent's Kafka broker id.
func (a *Agent) nodeID() int32 { return a.members.Self().NodeID }

// GroupCount returns how many consumer groups this agent coordinates
// (exported as silt_groups).
func (a *Agent) GroupCount() int {
	return a.groups.Count()
}

// RunJanitorOnce applies retention and collects garbage now, as the agent
// holding the janitor lease does every compaction.interval; admin tools and
// tests use it.
func (a *Agent) RunJanitorOnce(ctx context.Context) { a.janitor.RunOnce(ctx) }

// RunCompactionOnce compacts the partitions this agent leads now, as it
// does every compaction.interval; admin tools and tests use it.
func (a *Agent) RunCompactionOnce(ctx context.Context) (jobs.Compaction, error) {
	return a.compactor.CompactOnce(ctx)
}

// RunCleanerOnce runs keyed compaction (cleanup.policy=compact) over the
// partitions this agent leads now, as it does after compaction every
// compaction.interval; admin tools and tests use it.
func (a *Agent) RunCleanerOnce(ctx context.Context) (jobs.Cleaning, error) {
	return a.compactor.Cleaner.CleanOnce(ctx)
}

// compacts reports whether this agent compacts tp: the partitions it
// leads, ignoring zones so that one agent of the cluster is chosen. Two
// agents whose views differ for a moment may both compact a partition;
// the swap lets only one win (see jobs.Compactor).
func (a *Agent) compacts(tp metastore.TopicPartition) bool {
	return a.members.View().LeaderFor(tp, "").ID == a.cfg.ID
}

// ComputeConsumerLag computes consumer-group lag now and exports it, as the
// elected agent does periodically; admin tools and tests use it.
func (a *Agent) ComputeConsumerLag(ctx context.Context) (map[string]int64, error) {
	return a.lag.ComputeNow(ctx)
}

// topicResolver lets the transaction coordinator resolve topic names
// through the agent's topic cache.
type topicResolver struct{ topics *partition.Topics }

func (r topicResolver) Resolve(ctx context.Context, name string) (metastore.TopicID, int32, error) {
	t, err := r.topics.Get(ctx, name)
	if err != nil {
		return metastore.TopicID{}, 0, err
	}
	return t.ID, int32(len(t.Partitions)), nil
}
