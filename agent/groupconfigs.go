package agent

// Group configs: Kafka's GROUP config resource (DescribeConfigs,
// AlterConfigs, IncrementalAlterConfigs with resource type 32), for the
// share group settings Kafka keeps per group. A group's configs exist
// whether or not the group does (tools set them before the first member
// joins), and are stored in the metastore (GroupConfigStore). A key not
// set on a group takes the agent's setting of the same meaning
// (share.auto.offset.reset, group.share.record.lock.duration.ms,
// group.share.delivery.count.limit, share.isolation.level). Kafka's other
// group configs (consumer.* and share.session/heartbeat timing) are not
// per group in Silt: setting them is INVALID_CONFIG.
//
// Each agent reads a group's configs at most every groupConfigTTL: a
// change made through one agent applies there at once and on the others
// within that time.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
)

const (
	// groupConfigTTL is how long an agent uses a group's configs before
	// reading them again.
	groupConfigTTL = 5 * time.Second
	// maxCachedGroupConfigs bounds the groups whose configs an agent
	// keeps; past it the cache starts over.
	maxCachedGroupConfigs = 10_000
)

// groupConfigDef is one group config Silt knows.
type groupConfigDef struct {
	name     string
	def      func(cfg *Config) string // the agent's setting
	validate func(v string) error
	doc      string
}

func intIn(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("must be an integer from %d to %d", lo, hi)
		}
		return nil
	}
}

var groupConfigDefs = []groupConfigDef{
	{
		name:     "share.auto.offset.reset",
		def:      func(c *Config) string { return c.ShareAutoOffsetReset },
		validate: oneOf(ShareOffsetLatest, ShareOffsetEarliest),
		doc:      "where a share group starts a partition it never read: latest or earliest (by_duration is not supported)",
	},
	{
		name:     "share.record.lock.duration.ms",
		def:      func(c *Config) string { return strconv.FormatInt(c.ShareRecordLockDuration.Milliseconds(), 10) },
		validate: intIn(1000, 3_600_000),
		doc:      "how long (ms) a fetched record stays acquired by the member that fetched it",
	},
	{
		name:     "share.delivery.count.limit",
		def:      func(c *Config) string { return strconv.Itoa(c.ShareDeliveryCountLimit) },
		validate: intIn(2, 10),
		doc:      "deliveries of a record before it is archived",
	},
	{
		name:     "share.isolation.level",
		def:      func(c *Config) string { return c.ShareIsolationLevel },
		validate: oneOf("read_uncommitted", "read_committed"),
		doc:      "read_committed: records up to the last stable offset, aborted transactions' records archived, never delivered",
	},
}

func lookupGroupConfig(name string) (groupConfigDef, bool) {
	for _, d := range groupConfigDefs {
		if d.name == name {
			return d, true
		}
	}
	return groupConfigDef{}, false
}

func validateGroupConfig(name, value string) error {
	d, ok := lookupGroupConfig(name)
	if !ok {
		return fmt.Errorf("group config %s is not supported by Silt (supported: share.auto.offset.reset, share.record.lock.duration.ms, share.delivery.count.limit, share.isolation.level)", name)
	}
	if err := d.validate(value); err != nil {
		return fmt.Errorf("invalid value %q for group config %s: %w", value, name, err)
	}
	return nil
}

// shareSettings are a share group's effective settings.
type shareSettings struct {
	lock          time.Duration
	deliveryLimit int16
	earliest      bool
	readCommitted bool
}

type cachedGroupConfig struct {
	cfg map[string]string
	at  time.Time
}

// groupConfigCache holds groups' configs as last read.
type groupConfigCache struct {
	mu sync.Mutex
	m  map[string]cachedGroupConfig
}

func (c *groupConfigCache) get(group string) (map[string]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[group]
	if !ok || time.Since(e.at) >= groupConfigTTL {
		return nil, false
	}
	return e.cfg, true
}

func (c *groupConfigCache) put(group string, cfg map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedGroupConfigs {
		c.m = make(map[string]cachedGroupConfig)
	}
	c.m[group] = cachedGroupConfig{cfg: cfg, at: time.Now()}
}

// groupConfig returns a group's configs, from the cache while fresh.
func (a *Agent) groupConfig(ctx context.Context, group string) (map[string]string, error) {
	if cfg, ok := a.groupConfigs.get(group); ok {
		return cfg, nil
	}
	cfg, err := a.store.GroupConfig(ctx, group)
	if err != nil {
		return nil, err
	}
	a.groupConfigs.put(group, cfg)
	return cfg, nil
}

// shareSettingsOf is a share group's effective settings: its group
// configs over the agent's. A store error gives the agent's.
func (a *Agent) shareSettingsOf(ctx context.Context, group string) shareSettings {
	s := shareSettings{
		lock:          a.cfg.ShareRecordLockDuration,
		deliveryLimit: int16(a.cfg.ShareDeliveryCountLimit),
		earliest:      a.cfg.ShareAutoOffsetReset == ShareOffsetEarliest,
		readCommitted: a.cfg.ShareIsolationLevel == "read_committed",
	}
	cfg, err := a.groupConfig(ctx, group)
	if err != nil {
		a.log.Warn("read group configs; using the agent's share settings", "group", group, "err", err)
		return s
	}
	if v, ok := cfg["share.record.lock.duration.ms"]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			s.lock = time.Duration(n) * time.Millisecond
		}
	}
	if v, ok := cfg["share.delivery.count.limit"]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			s.deliveryLimit = int16(n)
		}
	}
	if v, ok := cfg["share.auto.offset.reset"]; ok {
		s.earliest = v == ShareOffsetEarliest
	}
	if v, ok := cfg["share.isolation.level"]; ok {
		s.readCommitted = v == "read_committed"
	}
	return s
}

// describeGroupConfig fills a DescribeConfigs answer for a group.
func (a *Agent) describeGroupConfig(ctx context.Context, group string, add func(name, value string, source kmsg.ConfigSource, readOnly bool, doc string)) (int16, string) {
	if group == "" {
		return kerr.InvalidRequest.Code, "a group name is required"
	}
	cfg, err := a.store.GroupConfig(ctx, group)
	if err != nil {
		return kerr.KafkaStorageError.Code, err.Error()
	}
	for _, d := range groupConfigDefs {
		if v, ok := cfg[d.name]; ok {
			add(d.name, v, kmsg.ConfigSourceGroupConfig, false, d.doc)
		} else {
			add(d.name, d.def(&a.cfg), kmsg.ConfigSourceDefaultConfig, false, d.doc)
		}
	}
	return 0, ""
}

// alterGroupConfig computes a group's new configs with edit, validates
// every key, and stores them unless validateOnly, by compare-and-set: a
// concurrent change makes the edit apply again to what is stored now.
func (a *Agent) alterGroupConfig(ctx context.Context, group string, validateOnly bool, edit func(map[string]string) (map[string]string, error)) (int16, string) {
	if group == "" {
		return kerr.InvalidRequest.Code, "a group name is required"
	}
	for attempt := 0; ; attempt++ {
		cur, err := a.store.GroupConfig(ctx, group)
		if err != nil {
			return kerr.KafkaStorageError.Code, err.Error()
		}
		next, err := edit(cur)
		if err != nil {
			return kerr.InvalidConfig.Code, err.Error()
		}
		for k, v := range next {
			if err := validateGroupConfig(k, v); err != nil {
				return kerr.InvalidConfig.Code, err.Error()
			}
		}
		if validateOnly {
			return 0, ""
		}
		err = a.store.SetGroupConfig(ctx, group, next, cur)
		if errors.Is(err, metastore.ErrConfigChanged) && attempt < 16 {
			continue
		}
		if err != nil {
			return kerr.KafkaStorageError.Code, err.Error()
		}
		a.groupConfigs.put(group, next)
		return 0, ""
	}
}
