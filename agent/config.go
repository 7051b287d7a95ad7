package agent

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"time"

	"github.com/siltstream/silt/auth"
	"github.com/siltstream/silt/group"
	"github.com/siltstream/silt/ingest"
	"github.com/siltstream/silt/jobs"
	"github.com/siltstream/silt/wire"
)

// Config is one agent's configuration. The keys named in comments are the
// config-contract keys of the silt binary. The block cache is configured and
// built by the caller (cache.Config) and handed to New.
type Config struct {
	ID string // agent.id; default: hostname + random suffix
	// NodeID is the Kafka node (broker) id the agent answers as (node.id);
	// -1 derives it from ID, which changes at every restart unless agent.id
	// is set. A node id another live agent holds is refused at start.
	NodeID    int32
	Listen    string // listen
	Advertise string // advertise; default: Listen
	Zone      string // zone
	ClusterID string // cluster.id

	// Listeners are the Kafka listeners (listeners, advertised.listeners;
	// see listeners.go). Empty: one PLAINTEXT listener on Listen,
	// advertised as Advertise. Validate makes Listen and Advertise those of
	// the first listener.
	Listeners []Listener
	// TLS is the TLS of SSL and SASL_SSL listeners (tls.*).
	TLS TLSConfig

	FlushInterval time.Duration // flush.interval
	FlushBytes    int64         // flush.bytes
	// BufferBytes bounds produced bytes held in memory: buffered, uploading
	// and committing. Producers wait when it is full. (buffer.bytes)
	BufferBytes int64
	// BufferReserve is the part of BufferBytes produced bytes may not use:
	// left to the Go runtime's own memory when the process's memory limit
	// is the budgets themselves (cmd/silt sets both). 0: none.
	BufferReserve int64
	// MaxUploads bounds concurrent segment uploads. (flush.max.uploads)
	MaxUploads int

	// Wire is the Kafka listener's framing and connection settings;
	// Wire.MaxRequestBytes is max.request.bytes and
	// Wire.MaxInflightRequestBytes is queued.max.request.bytes. Logger and
	// Observe are set by the agent.
	Wire wire.Config

	// SASL configures authentication on SASL_PLAINTEXT and SASL_SSL
	// listeners (see ServeListener): Mechanisms is sasl.mechanisms,
	// MaxReauth connections.max.reauth.ms, OAuthBearer the
	// sasl.oauthbearer.* keys; the agent sets Credentials (its store) and
	// Logger. Wire.FailedAuthenticationDelay is
	// connection.failed.authentication.delay.ms. No mechanisms: no SASL.
	SASL auth.Config

	// FetchMaxBytes caps the record bytes of one Fetch response and of
	// each partition in it, whatever the client asks for (fetch.max.bytes,
	// Kafka's default 55 MiB). The first batch of the first partition with
	// data is returned whole even if larger (KIP-74); batches are bounded
	// by max.message.bytes at produce time.
	FetchMaxBytes int32
	// FetchSessionSlots bounds the fetch sessions (KIP-227) the agent
	// keeps (max.incremental.fetch.session.cache.slots, Kafka's default
	// 1000); 0 opens none.
	FetchSessionSlots int

	// TxnMaxTimeout is the longest transaction timeout a producer may ask
	// for in InitProducerId (transaction.max.timeout.ms, Kafka's default
	// 15 minutes): a longer one gets INVALID_TRANSACTION_TIMEOUT, so a
	// crashed producer cannot hold read_committed consumers back for longer.
	TxnMaxTimeout time.Duration

	AutoCreateTopics bool // auto.create.topics
	// DefaultPartitions is num.partitions for auto-created topics and
	// CreateTopics with -1 partitions.
	DefaultPartitions int32

	// Heartbeat is how often the agent renews its registration
	// (membership.heartbeat); MembershipTTL is how long a registration lives
	// without renewal before other agents drop it (membership.ttl).
	Heartbeat     time.Duration
	MembershipTTL time.Duration

	// OrphanMinAge is how old an uncommitted upload must be before the
	// garbage collector dooms it (orphan.min.age); JanitorInterval is how
	// often idle producer state and transactional ids are expired
	// (janitor.interval).
	OrphanMinAge    time.Duration
	JanitorInterval time.Duration

	// CompactionInterval is how often every agent compacts the partitions
	// it leads, and the agent holding the janitor lease applies retention
	// and collects garbage (compaction.interval).
	// CompactionSegmentBytes is the target size of a compacted
	// per-partition segment: the write-path bytes one takes in
	// (compaction.segment.bytes); 0 turns compaction off.
	// GCGrace is how long an object stays in the bucket after the garbage
	// collector found it unreferenced (gc.grace): a fetch that resolved an
	// index row just before retention pruned it still reads its bytes.
	CompactionInterval     time.Duration
	CompactionSegmentBytes int64
	GCGrace                time.Duration
	// CompactionDedupeBufferBytes is the memory of keyed compaction's key
	// → offset map (compaction.dedupe.buffer.bytes): 24 bytes a key. A
	// partition whose dirty part has more keys is cleaned in several
	// passes.
	CompactionDedupeBufferBytes int64

	// ShutdownGrace bounds a graceful stop: finish buffered flushes and
	// answer in-flight requests. (shutdown.grace)
	ShutdownGrace time.Duration
	// ShutdownDrain is how long, at most, a stopping agent that has left
	// the cluster keeps answering clients that still know it — as an agent
	// that leads and coordinates nothing — before it closes its listeners;
	// it closes them as soon as no client is connected. (shutdown.drain)
	ShutdownDrain time.Duration

	// Authorization (ACLs). Authorizer is AuthorizerNone (no checks, the
	// default) or AuthorizerACL (authorizer); SuperUsers pass every check
	// (super.users); AllowEveryoneIfNoACL allows a resource no ACL names
	// (allow.everyone.if.no.acl.found). PrincipalBuilder, if set, gives the
	// principal of a request's connection instead of Conn.Principal, as
	// Kafka's principal.builder.class.
	Authorizer           string
	SuperUsers           []string
	AllowEveryoneIfNoACL bool
	PrincipalBuilder     func(*wire.Conn) string

	// GroupProtocols are the group protocols the coordinator serves
	// (group.coordinator.rebalance.protocols): GroupProtocolClassic
	// (JoinGroup/SyncGroup, always on), GroupProtocolConsumer (KIP-848:
	// ConsumerGroupHeartbeat and ConsumerGroupDescribe are advertised and
	// group.version 1 is finalized only with it) and GroupProtocolShare
	// (KIP-932 share groups: ShareGroupHeartbeat and ShareGroupDescribe
	// are advertised, and share.version 1 finalized, only with it).
	GroupProtocols []string
	// ConsumerSessionTimeout and ConsumerHeartbeatInterval are a consumer
	// group member's session and the heartbeat interval it is told to
	// keep (group.consumer.session.timeout.ms,
	// group.consumer.heartbeat.interval.ms; Kafka's 45 s and 5 s).
	ConsumerSessionTimeout    time.Duration
	ConsumerHeartbeatInterval time.Duration
	// ConsumerMigrationPolicy is group.consumer.migration.policy: whether
	// a classic group converts to a consumer group online when a
	// consumer-protocol member joins, and back when the last one leaves
	// (bidirectional, upgrade, downgrade or disabled; Kafka's default
	// bidirectional).
	ConsumerMigrationPolicy string
	// ShareSessionTimeout, ShareHeartbeatInterval and ShareMaxSize are a
	// share group member's session, the heartbeat interval it is told to
	// keep, and the members a share group takes
	// (group.share.session.timeout.ms, group.share.heartbeat.interval.ms,
	// group.share.max.size; Kafka's 45 s, 5 s and 200).
	ShareSessionTimeout    time.Duration
	ShareHeartbeatInterval time.Duration
	ShareMaxSize           int
	// Share-partition settings, Kafka's names and defaults, as agent
	// (broker) keys; groups override the first four with group configs
	// (groupconfigs.go). ShareRecordLockDuration is how long a fetched record stays
	// acquired (group.share.record.lock.duration.ms, 30 s);
	// ShareDeliveryCountLimit how often a record is delivered before it
	// is archived (group.share.delivery.count.limit, 5);
	// SharePartitionMaxRecordLocks the records in flight per share
	// partition (group.share.partition.max.record.locks, 2000);
	// ShareAutoOffsetReset where a new share partition starts
	// (share.auto.offset.reset: latest or earliest); ShareIsolationLevel
	// (share.isolation.level: read_uncommitted or read_committed);
	// ShareSessionSlots the share sessions the agent keeps
	// (group.share.max.share.sessions, 2000).
	ShareRecordLockDuration      time.Duration
	ShareDeliveryCountLimit      int
	SharePartitionMaxRecordLocks int
	ShareAutoOffsetReset         string
	ShareIsolationLevel          string
	ShareSessionSlots            int

	Logger *slog.Logger
}

// Group protocols (group.coordinator.rebalance.protocols).
const (
	GroupProtocolClassic  = "classic"
	GroupProtocolConsumer = "consumer"
	GroupProtocolShare    = "share"
)

// DefaultGroupProtocols is group.coordinator.rebalance.protocols'
// default: classic and consumer, Kafka 4's. Clients choose (franz-go with
// kgo.ServerSideBalancer, Java with group.protocol=consumer); others keep
// the classic protocol. Share groups (share) are opt-in, as in Kafka
// before 4.2 (share.version off unless enabled): turning them on makes a
// share group's every fetch and acknowledgement a metastore write, a cost
// an operator should choose.
var DefaultGroupProtocols = []string{GroupProtocolClassic, GroupProtocolConsumer}

// ConsumerGroups reports whether the consumer group protocol (KIP-848)
// is on.
func (c *Config) ConsumerGroups() bool {
	return slices.Contains(c.GroupProtocols, GroupProtocolConsumer)
}

// share.auto.offset.reset values.
const (
	ShareOffsetLatest   = "latest"
	ShareOffsetEarliest = "earliest"
)

// ShareGroups reports whether share groups (KIP-932) are on.
func (c *Config) ShareGroups() bool {
	return slices.Contains(c.GroupProtocols, GroupProtocolShare)
}

// DefaultConfig returns the defaults of DESIGN.md.
func DefaultConfig() Config {
	return Config{
		Listen:            "127.0.0.1:9092",
		NodeID:            -1,
		ClusterID:         "silt",
		FlushInterval:     100 * time.Millisecond,
		FlushBytes:        8 << 20,
		BufferBytes:       128 << 20,
		MaxUploads:        4,
		Wire:              wire.DefaultConfig(),
		FetchMaxBytes:     55 << 20,
		FetchSessionSlots: 1000,
		DefaultPartitions: 1,
		TxnMaxTimeout:     15 * time.Minute,
		Heartbeat:         2 * time.Second,
		MembershipTTL:     10 * time.Second,
		OrphanMinAge:      time.Hour,
		JanitorInterval:   5 * time.Minute,
		// A minute: retention is a few store queries per partition, and the
		// bucket returns to its retained size within interval + grace.
		CompactionInterval: time.Minute,
		// 64 MiB: a consumer catching up reads a partition at bucket speed
		// in few GETs, and a compactor holds one segment in memory.
		CompactionSegmentBytes: jobs.DefaultCompactionSegmentBytes,
		// 64 MiB: about 2.8 million keys per pass, held while a pass runs.
		CompactionDedupeBufferBytes: jobs.DefaultDedupeBufferBytes,
		// Five minutes: far longer than any fetch holds a resolved index
		// row (a read lasts at most about a client's request timeout, 30 s
		// by default, and a long poll resolves rows again each time it
		// wakes), and short enough that expired data leaves the bucket soon
		// after retention.
		GCGrace:       5 * time.Minute,
		ShutdownGrace: 30 * time.Second,
		// Long enough for a consumer to fetch once (franz-go waits up to
		// 5 s for data, Java 0.5 s) and be fenced, and a producer to be
		// told NOT_LEADER: both then refresh their metadata and forget us.
		ShutdownDrain: 10 * time.Second,
		Authorizer:    AuthorizerNone,

		GroupProtocols:            slices.Clone(DefaultGroupProtocols),
		ConsumerSessionTimeout:    45 * time.Second,
		ConsumerHeartbeatInterval: 5 * time.Second,
		ConsumerMigrationPolicy:   string(group.MigrationBidirectional),
		ShareSessionTimeout:       45 * time.Second,
		ShareHeartbeatInterval:    5 * time.Second,
		ShareMaxSize:              200,

		ShareRecordLockDuration:      30 * time.Second,
		ShareDeliveryCountLimit:      5,
		SharePartitionMaxRecordLocks: 2000,
		ShareAutoOffsetReset:         ShareOffsetLatest,
		ShareIsolationLevel:          "read_uncommitted",
		ShareSessionSlots:            2000,
	}
}

// ingestConfig is the write pipeline's part of the config.
func (c *Config) ingestConfig(log *slog.Logger) ingest.Config {
	return ingest.Config{
		AgentID:       c.ID,
		FlushInterval: c.FlushInterval,
		FlushBytes:    c.FlushBytes,
		BufferBytes:   c.BufferBytes,
		Reserve:       c.BufferReserve,
		MaxUploads:    c.MaxUploads,
		Logger:        log,
	}
}

// Validate checks the config and fills derived defaults. Errors name the
// config key.
func (c *Config) Validate() error {
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s-%d", host, time.Now().UnixNano()%1e6)
	}
	if len(c.Listeners) == 0 {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("listen: %q is not host:port: %v", c.Listen, err)
		}
		if c.Advertise == "" {
			c.Advertise = c.Listen
		}
		if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
			return fmt.Errorf("advertise: %q is not host:port: %v", c.Advertise, err)
		}
	}
	if err := c.validateListeners(); err != nil {
		return err
	}
	if err := c.ingestConfig(nil).Validate(); err != nil {
		return err
	}
	switch {
	case c.Wire.MaxRequestBytes < 1024:
		return fmt.Errorf("max.request.bytes: must be at least 1024, got %d", c.Wire.MaxRequestBytes)
	case c.Wire.MaxInflightRequestBytes < 1024:
		return fmt.Errorf("queued.max.request.bytes: must be at least 1024, got %d", c.Wire.MaxInflightRequestBytes)
	case c.FetchMaxBytes < 1024:
		return fmt.Errorf("fetch.max.bytes: must be at least 1024, got %d", c.FetchMaxBytes)
	case c.FetchSessionSlots < 0:
		return fmt.Errorf("max.incremental.fetch.session.cache.slots: must not be negative, got %d", c.FetchSessionSlots)
	case c.NodeID < -1:
		return fmt.Errorf("node.id: must be -1 (derived from agent.id) or at least 0, got %d", c.NodeID)
	case c.DefaultPartitions < 1:
		return fmt.Errorf("num.partitions: must be at least 1, got %d", c.DefaultPartitions)
	case c.TxnMaxTimeout < time.Millisecond:
		return fmt.Errorf("transaction.max.timeout.ms: must be at least 1, got %v", c.TxnMaxTimeout)
	case c.Heartbeat <= 0:
		return fmt.Errorf("membership.heartbeat: must be positive, got %v", c.Heartbeat)
	case c.MembershipTTL < 2*c.Heartbeat:
		return fmt.Errorf("membership.ttl: must be at least twice membership.heartbeat (%v), got %v", c.Heartbeat, c.MembershipTTL)
	case c.OrphanMinAge < time.Minute:
		return fmt.Errorf("orphan.min.age: must be at least 1m (uploads younger than this may still commit), got %v", c.OrphanMinAge)
	case c.JanitorInterval <= 0:
		return fmt.Errorf("janitor.interval: must be positive, got %v", c.JanitorInterval)
	case c.CompactionInterval <= 0:
		return fmt.Errorf("compaction.interval: must be positive, got %v", c.CompactionInterval)
	case c.CompactionSegmentBytes != 0 && (c.CompactionSegmentBytes < 1<<20 || c.CompactionSegmentBytes > 1<<30):
		return fmt.Errorf("compaction.segment.bytes: must be 0 (no compaction) or between 1MiB and 1GiB, got %d", c.CompactionSegmentBytes)
	case c.CompactionDedupeBufferBytes < 1<<10 || c.CompactionDedupeBufferBytes > 1<<34:
		return fmt.Errorf("compaction.dedupe.buffer.bytes: must be between 1KiB and 16GiB, got %d", c.CompactionDedupeBufferBytes)
	case c.GCGrace < 0:
		return fmt.Errorf("gc.grace: must not be negative, got %v", c.GCGrace)
	case c.ShutdownGrace <= 0:
		return fmt.Errorf("shutdown.grace: must be positive, got %v", c.ShutdownGrace)
	case c.ShutdownDrain < 0 || c.ShutdownDrain >= c.ShutdownGrace:
		return fmt.Errorf("shutdown.drain: must be at least 0 and less than shutdown.grace (%v), got %v", c.ShutdownGrace, c.ShutdownDrain)
	}
	if err := c.validateGroupProtocols(); err != nil {
		return err
	}
	if len(c.SASL.Mechanisms) > 0 {
		if err := c.SASL.Validate(); err != nil {
			return err
		}
	}
	switch c.Authorizer {
	case "":
		c.Authorizer = AuthorizerNone
	case AuthorizerNone, AuthorizerACL:
	default:
		return fmt.Errorf("authorizer: must be %q or %q, got %q", AuthorizerNone, AuthorizerACL, c.Authorizer)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// validateGroupProtocols checks the group protocol keys as Kafka does:
// classic must be on, nothing but classic and consumer is known, and a
// consumer group member heartbeats more often than its session lapses.
func (c *Config) validateGroupProtocols() error {
	if c.GroupProtocols == nil {
		c.GroupProtocols = slices.Clone(DefaultGroupProtocols)
	}
	for _, p := range c.GroupProtocols {
		if p != GroupProtocolClassic && p != GroupProtocolConsumer && p != GroupProtocolShare {
			return fmt.Errorf("group.coordinator.rebalance.protocols: unknown protocol %q (known: classic, consumer, share)", p)
		}
	}
	switch {
	case !slices.Contains(c.GroupProtocols, GroupProtocolClassic):
		return fmt.Errorf("group.coordinator.rebalance.protocols: must contain classic, got %v", c.GroupProtocols)
	case c.ConsumerHeartbeatInterval <= 0:
		return fmt.Errorf("group.consumer.heartbeat.interval.ms: must be positive, got %v", c.ConsumerHeartbeatInterval)
	case c.ConsumerSessionTimeout <= c.ConsumerHeartbeatInterval:
		return fmt.Errorf("group.consumer.session.timeout.ms: must be longer than group.consumer.heartbeat.interval.ms (%v), got %v", c.ConsumerHeartbeatInterval, c.ConsumerSessionTimeout)
	case c.ShareHeartbeatInterval <= 0:
		return fmt.Errorf("group.share.heartbeat.interval.ms: must be positive, got %v", c.ShareHeartbeatInterval)
	case c.ShareSessionTimeout <= c.ShareHeartbeatInterval:
		return fmt.Errorf("group.share.session.timeout.ms: must be longer than group.share.heartbeat.interval.ms (%v), got %v", c.ShareHeartbeatInterval, c.ShareSessionTimeout)
	case c.ShareMaxSize <= 0:
		return fmt.Errorf("group.share.max.size: must be positive, got %d", c.ShareMaxSize)
	case c.ShareRecordLockDuration <= 0:
		return fmt.Errorf("group.share.record.lock.duration.ms: must be positive, got %v", c.ShareRecordLockDuration)
	case c.ShareDeliveryCountLimit < 2 || c.ShareDeliveryCountLimit > 10:
		return fmt.Errorf("group.share.delivery.count.limit: must be 2 to 10 (Kafka's range), got %d", c.ShareDeliveryCountLimit)
	case c.SharePartitionMaxRecordLocks < 100 || c.SharePartitionMaxRecordLocks > 10000:
		return fmt.Errorf("group.share.partition.max.record.locks: must be 100 to 10000, got %d", c.SharePartitionMaxRecordLocks)
	case c.ShareAutoOffsetReset != ShareOffsetLatest && c.ShareAutoOffsetReset != ShareOffsetEarliest:
		return fmt.Errorf("share.auto.offset.reset: must be latest or earliest, got %q", c.ShareAutoOffsetReset)
	case c.ShareIsolationLevel != "read_uncommitted" && c.ShareIsolationLevel != "read_committed":
		return fmt.Errorf("share.isolation.level: must be read_uncommitted or read_committed, got %q", c.ShareIsolationLevel)
	case c.ShareSessionSlots <= 0:
		return fmt.Errorf("group.share.max.share.sessions: must be positive, got %d", c.ShareSessionSlots)
	}
	if c.ConsumerMigrationPolicy == "" {
		c.ConsumerMigrationPolicy = string(group.MigrationBidirectional)
	}
	p, err := group.ParseMigrationPolicy(c.ConsumerMigrationPolicy)
	if err != nil {
		return fmt.Errorf("group.consumer.migration.policy: %w", err)
	}
	c.ConsumerMigrationPolicy = string(p)
	return nil
}
