package agent

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"
)

// Config is one agent's configuration. The keys named in comments are the
// config-contract keys of the silt binary.
type Config struct {
	ID        string // agent.id; default: hostname + random suffix
	Listen    string // listen
	Advertise string // advertise; default: Listen
	Zone      string // zone
	ClusterID string // cluster.id

	FlushInterval time.Duration // flush.interval
	FlushBytes    int64         // flush.bytes
	// BufferBytes bounds produced bytes held in memory: buffered, uploading
	// and committing. Producers wait when it is full. (buffer.bytes)
	BufferBytes int64
	// MaxUploads bounds concurrent segment uploads. (flush.max.uploads)
	MaxUploads int

	MaxRequestBytes  int32 // max.request.bytes
	AutoCreateTopics bool  // auto.create.topics
	// DefaultPartitions is num.partitions for auto-created topics and
	// CreateTopics with -1 partitions.
	DefaultPartitions int32

	CacheMemoryBytes int64  // cache.memory.bytes
	CacheBlockBytes  int64  // cache.block.bytes
	CacheDiskDir     string // cache.disk.dir; empty: no disk tier
	CacheDiskBytes   int64  // cache.disk.bytes
	// CacheReadAheadBlocks is how many blocks the cache fetches ahead of a
	// sequential reader; 0 disables read-ahead.
	CacheReadAheadBlocks int

	// Heartbeat is how often the agent renews its registration
	// (membership.heartbeat); MembershipTTL is how long a registration lives
	// without renewal before other agents drop it (membership.ttl).
	Heartbeat     time.Duration
	MembershipTTL time.Duration

	// OrphanMinAge is how old an uncommitted upload must be before the
	// janitor deletes it (orphan.min.age); JanitorInterval is how often it
	// looks (janitor.interval).
	OrphanMinAge    time.Duration
	JanitorInterval time.Duration

	// ShutdownGrace bounds a graceful stop: finish buffered flushes and
	// answer in-flight requests. (shutdown.grace)
	ShutdownGrace time.Duration

	Logger *slog.Logger
}

// DefaultConfig returns the defaults of DESIGN.md.
func DefaultConfig() Config {
	return Config{
		Listen:               "127.0.0.1:9092",
		ClusterID:            "silt",
		FlushInterval:        100 * time.Millisecond,
		FlushBytes:           8 << 20,
		BufferBytes:          128 << 20,
		MaxUploads:           4,
		MaxRequestBytes:      100 << 20,
		DefaultPartitions:    1,
		CacheMemoryBytes:     256 << 20,
		CacheBlockBytes:      4 << 20,
		CacheReadAheadBlocks: 2,
		Heartbeat:            2 * time.Second,
		MembershipTTL:        10 * time.Second,
		OrphanMinAge:         time.Hour,
		JanitorInterval:      5 * time.Minute,
		ShutdownGrace:        30 * time.Second,
	}
}

// Validate checks the config and fills derived defaults. Errors name the
// config key.
func (c *Config) Validate() error {
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s-%d", host, time.Now().UnixNano()%1e6)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port: %v", c.Listen, err)
	}
	if c.Advertise == "" {
		c.Advertise = c.Listen
	}
	if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
		return fmt.Errorf("advertise: %q is not host:port: %v", c.Advertise, err)
	}
	switch {
	case c.FlushInterval <= 0:
		return fmt.Errorf("flush.interval: must be positive, got %v", c.FlushInterval)
	case c.FlushBytes <= 0:
		return fmt.Errorf("flush.bytes: must be positive, got %d", c.FlushBytes)
	case c.BufferBytes < 2*c.FlushBytes:
		return fmt.Errorf("buffer.bytes: must be at least twice flush.bytes (%d), got %d", c.FlushBytes, c.BufferBytes)
	case c.MaxUploads < 1:
		return fmt.Errorf("flush.max.uploads: must be at least 1, got %d", c.MaxUploads)
	case c.MaxRequestBytes < 1024:
		return fmt.Errorf("max.request.bytes: must be at least 1024, got %d", c.MaxRequestBytes)
	case c.DefaultPartitions < 1:
		return fmt.Errorf("num.partitions: must be at least 1, got %d", c.DefaultPartitions)
	case c.CacheMemoryBytes < 0:
		return fmt.Errorf("cache.memory.bytes: must not be negative, got %d", c.CacheMemoryBytes)
	case c.CacheBlockBytes <= 0:
		return fmt.Errorf("cache.block.bytes: must be positive, got %d", c.CacheBlockBytes)
	case c.CacheDiskDir != "" && c.CacheDiskBytes <= 0:
		return fmt.Errorf("cache.disk.bytes: must be positive when cache.disk.dir is set, got %d", c.CacheDiskBytes)
	case c.CacheDiskDir == "" && c.CacheDiskBytes != 0:
		return fmt.Errorf("cache.disk.dir: must be set when cache.disk.bytes is (%d)", c.CacheDiskBytes)
	case c.CacheReadAheadBlocks < 0:
		return fmt.Errorf("cache read-ahead blocks: must not be negative, got %d", c.CacheReadAheadBlocks)
	case c.Heartbeat <= 0:
		return fmt.Errorf("membership.heartbeat: must be positive, got %v", c.Heartbeat)
	case c.MembershipTTL < 2*c.Heartbeat:
		return fmt.Errorf("membership.ttl: must be at least twice membership.heartbeat (%v), got %v", c.Heartbeat, c.MembershipTTL)
	case c.OrphanMinAge < time.Minute:
		return fmt.Errorf("orphan.min.age: must be at least 1m (uploads younger than this may still commit), got %v", c.OrphanMinAge)
	case c.JanitorInterval <= 0:
		return fmt.Errorf("janitor.interval: must be positive, got %v", c.JanitorInterval)
	case c.ShutdownGrace <= 0:
		return fmt.Errorf("shutdown.grace: must be positive, got %v", c.ShutdownGrace)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
