package group

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/siltstream/silt/metastore"
)

const (
	// DefaultMinSessionTimeout and DefaultMaxSessionTimeout are Kafka's
	// defaults for group.min.session.timeout.ms and
	// group.max.session.timeout.ms.
	DefaultMinSessionTimeout = 6 * time.Second
	DefaultMaxSessionTimeout = 30 * time.Minute
	// DefaultConsumerSessionTimeout and DefaultConsumerHeartbeatInterval
	// are Kafka's defaults for group.consumer.session.timeout.ms and
	// group.consumer.heartbeat.interval.ms.
	DefaultConsumerSessionTimeout    = 45 * time.Second
	DefaultConsumerHeartbeatInterval = 5 * time.Second
	// DefaultConsumerMaxSize bounds a consumer group's members. Kafka's
	// default is unbounded; ours keeps one client from growing a group's
	// memory (and its saved state) without end.
	DefaultConsumerMaxSize = 10000
	// DefaultShareSessionTimeout, DefaultShareHeartbeatInterval and
	// DefaultShareMaxSize are Kafka's defaults for
	// group.share.session.timeout.ms, group.share.heartbeat.interval.ms
	// and group.share.max.size.
	DefaultShareSessionTimeout    = 45 * time.Second
	DefaultShareHeartbeatInterval = 5 * time.Second
	DefaultShareMaxSize           = 200
	// storeTimeout bounds one store call made for a group.
	storeTimeout = 10 * time.Second
	// sweepInterval is how often loaded groups are checked for coordination
	// moving elsewhere.
	sweepInterval = time.Second
)

// Store is what the coordinator keeps in the metadata store: groups, fenced
// by generation, their committed offsets, and share groups' share
// partitions (for the share offset APIs and DeleteGroups).
type Store interface {
	metastore.GroupStore
	metastore.OffsetStore
	metastore.ShareStore
}

// Config is what a Coordinator is built from.
type Config struct {
	// Store holds groups and offsets. Required.
	Store Store
	// IsCoordinator reports whether this process coordinates the group
	// with this id now. Requests for other groups get NOT_COORDINATOR, and
	// loaded groups that move elsewhere are unloaded by Run. Required.
	IsCoordinator func(group string) bool
	// RefreshPlacement rereads the cluster's membership from the store, so
	// that IsCoordinator answers for the store's current epoch rather than
	// a cached view. It is called before a group is loaded (taken over).
	// nil: placement is never stale (a single node).
	RefreshPlacement func(ctx context.Context) error
	// Partitions returns how many partitions a topic has, for OffsetCommit
	// and OffsetDelete. A topic that does not exist is an error wrapping
	// metastore.ErrUnknownTopic. Required.
	Partitions func(ctx context.Context, topic string) (int, error)
	// Topics lists the cluster's topics (name, id, partition count) for
	// consumer groups' subscriptions, regexes included. It may answer
	// from a cache that trails topic creation by a little. nil: consumer
	// groups see no topics.
	Topics func(ctx context.Context) ([]TopicInfo, error)
	// ConsumerSessionTimeout and ConsumerHeartbeatInterval are Kafka's
	// group.consumer.session.timeout.ms and
	// group.consumer.heartbeat.interval.ms; zero means Kafka's defaults
	// (45 s, 5 s).
	ConsumerSessionTimeout, ConsumerHeartbeatInterval time.Duration
	// ConsumerMaxSize is group.consumer.max.size: members a consumer
	// group takes; zero means DefaultConsumerMaxSize.
	ConsumerMaxSize int
	// MigrationPolicy is group.consumer.migration.policy: whether a
	// classic group converts to a consumer group online, and back; ""
	// means MigrationBidirectional, Kafka's default.
	MigrationPolicy MigrationPolicy
	// ShareSessionTimeout, ShareHeartbeatInterval and ShareMaxSize are
	// Kafka's group.share.session.timeout.ms,
	// group.share.heartbeat.interval.ms and group.share.max.size; zero
	// means Kafka's defaults (45 s, 5 s, 200).
	ShareSessionTimeout, ShareHeartbeatInterval time.Duration
	ShareMaxSize                                int
	// Topic resolves one topic by name, from the store if need be, for
	// the share offset APIs; an unknown topic is an error wrapping
	// metastore.ErrUnknownTopic. nil: every topic is unknown.
	Topic func(ctx context.Context, name string) (TopicInfo, error)
	// HighWatermark returns a partition's high watermark, for the lag
	// DescribeShareGroupOffsets reports. nil: lag is -1.
	HighWatermark func(ctx context.Context, topic metastore.TopicID, partition int32) (int64, error)
	// ReleaseShareMember returns the records a share group member holds
	// to its group, when the member leaves or its session lapses (as
	// Kafka does). nil: they wait for their acquisition locks to lapse.
	ReleaseShareMember func(ctx context.Context, group, member string)
	// Log receives the coordinator's events; nil discards them.
	Log *slog.Logger
	// MinSessionTimeout and MaxSessionTimeout bound the session timeouts
	// members may ask for; zero means Kafka's defaults.
	MinSessionTimeout, MaxSessionTimeout time.Duration
}

// Coordinator holds the groups this process coordinates.
type Coordinator struct {
	store         Store
	isCoordinator func(string) bool
	refresh       func(context.Context) error
	partitions    func(context.Context, string) (int, error)
	log           *slog.Logger
	minSession    time.Duration
	maxSession    time.Duration
	topics        func(context.Context) ([]TopicInfo, error)
	cSession      time.Duration
	cHeartbeat    time.Duration
	cMaxSize      int
	migration     MigrationPolicy
	sSession      time.Duration
	sHeartbeat    time.Duration
	sMaxSize      int
	topicByName   func(context.Context, string) (TopicInfo, error)
	highWatermark func(context.Context, metastore.TopicID, int32) (int64, error)
	releaseShare  func(ctx context.Context, group, member string)

	mu      sync.Mutex
	groups  map[string]*group
	loading map[string]struct{}
	closed  bool
}

// NewCoordinator returns a Coordinator with no groups loaded. Groups load
// from the store on their first request.
func NewCoordinator(cfg Config) *Coordinator {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{
		store:         cfg.Store,
		isCoordinator: cfg.IsCoordinator,
		refresh:       cfg.RefreshPlacement,
		partitions:    cfg.Partitions,
		log:           log.With("component", "groups"),
		minSession:    cfg.MinSessionTimeout,
		maxSession:    cfg.MaxSessionTimeout,
		topics:        cfg.Topics,
		cSession:      cfg.ConsumerSessionTimeout,
		cHeartbeat:    cfg.ConsumerHeartbeatInterval,
		cMaxSize:      cfg.ConsumerMaxSize,
		migration:     cfg.MigrationPolicy,
		sSession:      cfg.ShareSessionTimeout,
		sHeartbeat:    cfg.ShareHeartbeatInterval,
		sMaxSize:      cfg.ShareMaxSize,
		topicByName:   cfg.Topic,
		highWatermark: cfg.HighWatermark,
		releaseShare:  cfg.ReleaseShareMember,
		groups:        make(map[string]*group),
		loading:       make(map[string]struct{}),
	}
	if c.minSession <= 0 {
		c.minSession = DefaultMinSessionTimeout
	}
	if c.maxSession <= 0 {
		c.maxSession = DefaultMaxSessionTimeout
	}
	if c.cSession <= 0 {
		c.cSession = DefaultConsumerSessionTimeout
	}
	if c.cHeartbeat <= 0 {
		c.cHeartbeat = DefaultConsumerHeartbeatInterval
	}
	if c.cMaxSize <= 0 {
		c.cMaxSize = DefaultConsumerMaxSize
	}
	if c.migration == "" {
		c.migration = MigrationBidirectional
	}
	if c.sSession <= 0 {
		c.sSession = DefaultShareSessionTimeout
	}
	if c.sHeartbeat <= 0 {
		c.sHeartbeat = DefaultShareHeartbeatInterval
	}
	if c.sMaxSize <= 0 {
		c.sMaxSize = DefaultShareMaxSize
	}
	return c
}

// Run unloads groups this process no longer coordinates, and empty groups
// nobody is using, until ctx ends.
func (c *Coordinator) Run(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.sweep()
	}
}

func (c *Coordinator) sweep() {
	for _, g := range c.snapshot() {
		g.mu.Lock()
		switch {
		case !c.isCoordinator(g.id):
			c.log.Info("no longer coordinating group; unloading", "group", g.id)
			g.unloadLocked()
		case g.consumer != nil:
			if len(g.consumer.members) == 0 {
				g.unloadLocked()
			}
		case g.share != nil:
			if len(g.share.members) == 0 {
				g.unloadLocked()
			}
		case g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0:
			g.unloadLocked() // saved (or never mattered); reloads on demand
		}
		g.mu.Unlock()
	}
}

// Close unloads every group, answering parked requests with NOT_COORDINATOR
// so clients move to the next coordinator. Later requests get
// NOT_COORDINATOR too. Nothing needs saving: the store already holds every
// state that matters.
func (c *Coordinator) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	for _, g := range c.snapshot() {
		g.mu.Lock()
		g.unloadLocked()
		g.mu.Unlock()
	}
}

// Count returns how many groups are loaded: those this process coordinates
// and has served since they were last unloaded.
func (c *Coordinator) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.groups)
}

// snapshot lists the loaded groups.
func (c *Coordinator) snapshot() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	return gs
}

// acquire returns the group, loaded from the store if this process does
// not hold it yet, or a Kafka error code: NOT_COORDINATOR if another
// process coordinates it, COORDINATOR_LOAD_IN_PROGRESS while another
// request loads it, COORDINATOR_NOT_AVAILABLE if the store fails. Before
// loading, placement is reread from the store: a process takes a group
// over only on a view of the cluster as current as the store's, not on a
// cached one another agent may not share.
func (c *Coordinator) acquire(ctx context.Context, id string) (*group, int16) {
	if !c.isCoordinator(id) {
		return nil, kerr.NotCoordinator.Code
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, kerr.NotCoordinator.Code
	}
	if g, ok := c.groups[id]; ok {
		c.mu.Unlock()
		return g, 0
	}
	if _, ok := c.loading[id]; ok {
		c.mu.Unlock()
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	c.loading[id] = struct{}{}
	c.mu.Unlock()

	lctx, cancel := context.WithTimeout(ctx, storeTimeout)
	var err error
	if c.refresh != nil {
		err = c.refresh(lctx)
	}
	var stored metastore.Group
	var ok, placed bool
	var epoch int64
	if err == nil {
		if placed = c.isCoordinator(id); placed {
			// Claim before reading: whatever a previous coordinator still
			// writes is either in what we read or refused.
			if epoch, err = c.store.ClaimGroup(lctx, id); err == nil {
				stored, ok, err = c.store.Group(lctx, id)
			}
		}
	}
	cancel()

	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.loading, id)
	if err != nil {
		c.log.Warn("load group failed", "group", id, "err", err)
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	if c.closed || !placed {
		return nil, kerr.NotCoordinator.Code
	}
	g := c.newGroup(id)
	g.epoch = epoch
	if ok {
		g.restore(stored)
		c.log.Info("loaded group", "group", id, "generation", g.generation, "state", g.state, "members", len(g.members))
	}
	c.groups[id] = g
	return g, 0
}

// loaded returns the group if this process holds it in memory.
func (c *Coordinator) loaded(id string) *group {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups[id]
}

func (c *Coordinator) newGroup(id string) *group {
	return &group{
		c:        c,
		id:       id,
		loadedAt: time.Now(),
		members:  make(map[string]*member),
		statics:  make(map[string]string),
		pending:  make(map[string]*time.Timer),
	}
}
