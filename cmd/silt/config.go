package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/auth/acl"
	"github.com/siltstream/silt/cache"
)

// configError marks an error in the user's configuration (flags, environment
// or file). main exits with status 2 for these, 1 for everything else.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

func configErrorf(format string, args ...any) error {
	return &configError{fmt.Errorf(format, args...)}
}

// kind says how a key's value is parsed.
type kind int

const (
	kindString kind = iota
	kindDuration
	kindSize // bytes: 8MiB, 64KiB, 1GB, 1048576
	kindInt
	kindBool
)

func (k kind) String() string {
	switch k {
	case kindDuration:
		return "duration"
	case kindSize:
		return "size"
	case kindInt:
		// Not "int": viper casts flags of that type, turning "abc" into 0.
		return "integer"
	case kindBool:
		return "bool"
	default:
		return "string"
	}
}

// keySpec describes one key of the config tree. The same table drives the
// flags, the environment bindings, the defaults, unknown-key detection in
// the config file, and the README's config table (a test checks it).
type keySpec struct {
	key   string
	kind  kind
	def   string // default for `silt agent`, in the form a user would write
	usage string
}

// flagName is the key with '.' replaced by '-': flush.interval → --flush-interval.
func (k keySpec) flagName() string { return strings.ReplaceAll(k.key, ".", "-") }

// envName is SILT_ + the key upper-cased with '.' replaced by '_'.
func (k keySpec) envName() string {
	return "SILT_" + strings.ToUpper(strings.ReplaceAll(k.key, ".", "_"))
}

// agentKeys returns the config tree shared by `silt agent` and `silt dev`,
// with the defaults of `silt agent`.
func agentKeys() []keySpec {
	d := agent.DefaultConfig()
	c := cache.DefaultConfig()
	keys := []keySpec{
		{"listen", kindString, "", "Kafka listener address (host:port); default " + d.Listen + " unless listeners is set"},
		{"advertise", kindString, "", "address given to clients (default: listen; the hostname if listen's host is unspecified)"},
		{"zone", kindString, "", "availability zone of this agent"},
		{"agent.id", kindString, "", "agent id (default: hostname + random suffix)"},
		{"node.id", kindInt, strconv.Itoa(int(d.NodeID)), "Kafka node (broker) id of this agent, kept across restarts; -1: derived from agent.id. Refused at start while another live agent holds it"},
		{"cluster.id", kindString, d.ClusterID, "cluster id reported to clients"},
		{"bucket.url", kindString, "", "object store: s3://bucket/prefix?region=…&endpoint=…&path_style=true, file:///dir, mem://"},
		{"metastore.url", kindString, "", "metadata store: postgres://user@host:5432/db or sqlite:///path/meta.db"},
		{"flush.interval", kindDuration, d.FlushInterval.String(), "flush the write buffer after this long"},
		{"flush.bytes", kindSize, formatSize(d.FlushBytes), "flush the write buffer when it holds this much"},
		{"buffer.bytes", kindSize, formatSize(d.BufferBytes), "bound on produced bytes held in memory; producers wait when full"},
		{"flush.max.uploads", kindInt, strconv.Itoa(d.MaxUploads), "concurrent segment uploads"},
		{"max.request.bytes", kindSize, formatSize(int64(d.Wire.MaxRequestBytes)), "largest Kafka request accepted"},
		{"queued.max.request.bytes", kindSize, formatSize(d.Wire.MaxInflightRequestBytes), "memory for requests read but not yet answered, shared by all connections; a connection stops reading while its next request does not fit"},
		{"fetch.max.bytes", kindSize, formatSize(int64(d.FetchMaxBytes)), "most record bytes in one Fetch response, whatever the client asks for (the first batch may exceed it)"},
		{"max.incremental.fetch.session.cache.slots", kindInt, strconv.Itoa(d.FetchSessionSlots), "fetch sessions (KIP-227) the agent keeps; 0 opens none"},
		{"auto.create.topics", kindBool, "false", "create topics on Metadata requests for unknown topics"},
		{"transaction.max.timeout.ms", kindInt, strconv.FormatInt(d.TxnMaxTimeout.Milliseconds(), 10), "longest transaction timeout in ms a producer may ask for (longer: INVALID_TRANSACTION_TIMEOUT)"},
		{"num.partitions", kindInt, strconv.Itoa(int(d.DefaultPartitions)), "partitions of auto-created topics"},
		{"group.coordinator.rebalance.protocols", kindString, strings.Join(d.GroupProtocols, ","), "group protocols served, comma-separated: classic (always), consumer (KIP-848 consumer groups: ConsumerGroupHeartbeat, group.version 1) and share (KIP-932 share groups: ShareGroupHeartbeat, ShareFetch, ShareAcknowledge and the share offset APIs, share.version 1; off by default)"},
		{"group.consumer.session.timeout.ms", kindInt, strconv.FormatInt(d.ConsumerSessionTimeout.Milliseconds(), 10), "consumer group (KIP-848) member session in ms: a member silent this long leaves the group"},
		{"group.consumer.heartbeat.interval.ms", kindInt, strconv.FormatInt(d.ConsumerHeartbeatInterval.Milliseconds(), 10), "heartbeat interval in ms consumer group (KIP-848) members are told to keep"},
		{"group.consumer.migration.policy", kindString, d.ConsumerMigrationPolicy, "online migration between classic and consumer groups: bidirectional, upgrade (classic to consumer only), downgrade (consumer to classic only) or disabled"},
		{"group.share.session.timeout.ms", kindInt, strconv.FormatInt(d.ShareSessionTimeout.Milliseconds(), 10), "share group (KIP-932) member session in ms: a member silent this long leaves the group"},
		{"group.share.heartbeat.interval.ms", kindInt, strconv.FormatInt(d.ShareHeartbeatInterval.Milliseconds(), 10), "heartbeat interval in ms share group (KIP-932) members are told to keep"},
		{"group.share.max.size", kindInt, strconv.Itoa(d.ShareMaxSize), "members a share group takes (more: GROUP_MAX_SIZE_REACHED)"},
		{"group.share.record.lock.duration.ms", kindInt, strconv.FormatInt(d.ShareRecordLockDuration.Milliseconds(), 10), "how long (ms) a record a share group member fetched stays acquired before it is delivered again"},
		{"group.share.delivery.count.limit", kindInt, strconv.Itoa(d.ShareDeliveryCountLimit), "deliveries of a record to share group members before it is archived (2-10)"},
		{"group.share.partition.max.record.locks", kindInt, strconv.Itoa(d.SharePartitionMaxRecordLocks), "records in flight per share partition (100-10000)"},
		{"group.share.max.share.sessions", kindInt, strconv.Itoa(d.ShareSessionSlots), "share sessions the agent keeps (more: SHARE_SESSION_LIMIT_REACHED)"},
		{"share.auto.offset.reset", kindString, d.ShareAutoOffsetReset, "where a share group starts reading a partition it never read: latest or earliest (groups may set their own: group config share.auto.offset.reset)"},
		{"share.isolation.level", kindString, d.ShareIsolationLevel, "isolation level of share groups: read_uncommitted, or read_committed (aborted transactions' records are archived); groups may set their own"},
		{"cache.memory.bytes", kindSize, formatSize(c.MemoryBytes), "memory read cache size"},
		{"cache.block.bytes", kindSize, formatSize(c.BlockSize), "read cache block size"},
		{"cache.disk.dir", kindString, "", "disk read cache directory (survives restarts; empty: no disk tier)"},
		{"cache.disk.bytes", kindSize, "0", "disk read cache size (required with cache.disk.dir)"},
		{"http.listen", kindString, "127.0.0.1:9644", "HTTP address for metrics, health and status (and pprof with http.pprof); empty disables"},
		{"shutdown.grace", kindDuration, d.ShutdownGrace.String(), "time allowed to flush and answer in-flight requests on SIGTERM"},
		{"shutdown.drain", kindDuration, d.ShutdownDrain.String(), "on SIGTERM, after leaving the cluster, how long at most to keep answering clients that still know this agent (ends when none is connected); less than shutdown.grace"},
		{"membership.heartbeat", kindDuration, d.Heartbeat.String(), "how often the agent renews its registration in the metastore"},
		{"membership.ttl", kindDuration, d.MembershipTTL.String(), "how long a registration lives without renewal before other agents drop it"},
		{"orphan.min.age", kindDuration, d.OrphanMinAge.String(), "age after which an uploaded but never committed segment is handed to the garbage collector"},
		{"janitor.interval", kindDuration, d.JanitorInterval.String(), "how often idle producer state and transactional ids are expired"},
		{"compaction.interval", kindDuration, d.CompactionInterval.String(), "how often every agent compacts the partitions it leads, and retention (retention.ms, retention.bytes) is applied and garbage collected by the agent holding the janitor lease"},
		{"compaction.segment.bytes", kindSize, formatSize(d.CompactionSegmentBytes), "target size of a compacted per-partition segment: the write-path bytes one takes in (1MiB to 1GiB; 0 turns compaction, keyed compaction included, off)"},
		{"compaction.dedupe.buffer.bytes", kindSize, formatSize(d.CompactionDedupeBufferBytes), "memory of keyed compaction's (cleanup.policy=compact) key → offset map, 24 bytes a key; a partition with more keys to clean is cleaned in several passes (1KiB to 16GiB)"},
		{"gc.grace", kindDuration, d.GCGrace.String(), "how long an unreferenced object (expired, of a deleted topic, orphaned) stays in the bucket before deletion; longer than any fetch may still read it"},
		{"sasl.mechanisms", kindString, "", "SASL mechanisms of SASL_PLAINTEXT and SASL_SSL listeners, comma-separated: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER"},
		{"sasl.oauthbearer.jwks.url", kindString, "", "OAUTHBEARER: URL of the JSON Web Key Set that signs tokens"},
		{"sasl.oauthbearer.expected.issuer", kindString, "", "OAUTHBEARER: required iss claim (empty: not checked)"},
		{"sasl.oauthbearer.expected.audience", kindString, "", "OAUTHBEARER: required aud claim (empty: not checked)"},
		{"sasl.oauthbearer.sub.claim.name", kindString, "sub", "OAUTHBEARER: claim holding the principal's name"},
		{"connections.max.reauth.ms", kindInt, "0", "SASL session lifetime in ms before clients must re-authenticate (KIP-368); 0: only an OAUTHBEARER token's expiry"},
		{"connection.failed.authentication.delay.ms", kindInt, "100", "delay in ms before a failed authentication is answered and its connection closed"},
		// Authorization (ACLs).
		{"authorizer", kindString, d.Authorizer, "none (no checks) or acl (Kafka ACLs from the metastore)"},
		{"super.users", kindString, "", "principals that pass every ACL check, separated by ';' (User:admin;User:ops)"},
		{"allow.everyone.if.no.acl.found", kindBool, "false", "with authorizer=acl, allow a request on a resource no ACL names"},
		{"log.level", kindString, "info", "debug, info, warn or error"},
		{"log.format", kindString, "", "json or text (default: text if stderr is a terminal, else json)"},
	}
	return append(keys, securityKeys()...)
}

// migrateKeys is the subset `silt migrate` reads.
func migrateKeys() []keySpec {
	var out []keySpec
	for _, k := range agentKeys() {
		switch k.key {
		case "metastore.url", "log.level", "log.format":
			out = append(out, k)
		}
	}
	return out
}

// devKeys is the agent tree with `silt dev` defaults, plus data.dir.
func devKeys() []keySpec {
	keys := agentKeys()
	for i := range keys {
		switch keys[i].key {
		case "auto.create.topics":
			keys[i].def = "true"
		case "bucket.url":
			keys[i].def, keys[i].usage = "", "ignored by silt dev: the bucket is <data-dir>/bucket"
		case "metastore.url":
			keys[i].def, keys[i].usage = "", "ignored by silt dev: the metastore is <data-dir>/meta.db"
		}
	}
	return append(keys, keySpec{"data.dir", kindString, "./silt-data", "directory holding the dev bucket and metastore"})
}

// configLoader binds one command's flags, environment and config file to a
// viper instance.
type configLoader struct {
	keys []keySpec
	v    *viper.Viper
	fs   *pflag.FlagSet
	// configPath is --config; SILT_CONFIG is the fallback.
	configPath string
	getenv     func(string) string
}

// newConfigLoader registers one flag per key (and --config) on fs.
func newConfigLoader(fs *pflag.FlagSet, keys []keySpec) *configLoader {
	l := &configLoader{keys: keys, fs: fs, getenv: os.Getenv}
	fs.StringVarP(&l.configPath, "config", "c", "", "YAML config file (env SILT_CONFIG)")
	for _, k := range keys {
		usage := fmt.Sprintf("%s (env %s)", k.usage, k.envName())
		if k.kind == kindBool {
			def, _ := strconv.ParseBool(k.def)
			fs.Bool(k.flagName(), def, usage)
			continue
		}
		fs.Var(&textFlag{s: k.def, typ: k.kind.String()}, k.flagName(), usage)
	}
	return l
}

// textFlag holds a flag's text as given; parsing happens once all sources
// are merged, so a bad value is reported by key like any other.
type textFlag struct{ s, typ string }

func (f *textFlag) String() string     { return f.s }
func (f *textFlag) Set(s string) error { f.s = s; return nil }
func (f *textFlag) Type() string       { return f.typ }

// load resolves every key with precedence flag > environment > file >
// default, and returns the raw string values by key.
func (l *configLoader) load() (map[string]string, error) {
	v := viper.New()
	v.SetEnvPrefix("SILT")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for _, k := range l.keys {
		v.SetDefault(k.key, k.def)
		// AutomaticEnv alone is enough for Get, but Unmarshal and AllSettings
		// only see environment-only keys that are bound explicitly.
		if err := v.BindEnv(k.key); err != nil {
			return nil, fmt.Errorf("bind %s: %w", k.envName(), err)
		}
		if err := v.BindPFlag(k.key, l.fs.Lookup(k.flagName())); err != nil {
			return nil, fmt.Errorf("bind --%s: %w", k.flagName(), err)
		}
	}
	path := l.configPath
	if path == "" {
		path = l.getenv("SILT_CONFIG")
	}
	if path != "" {
		if err := l.readFile(v, path); err != nil {
			return nil, err
		}
	}
	l.v = v
	out := make(map[string]string, len(l.keys))
	for _, k := range l.keys {
		raw := v.Get(k.key)
		switch raw := raw.(type) {
		case nil:
			out[k.key] = ""
		case string:
			out[k.key] = strings.TrimSpace(raw)
		case map[string]any, []any:
			return nil, configErrorf("%s: must be a single value, got %v", k.key, raw)
		default:
			out[k.key] = fmt.Sprint(raw)
		}
	}
	return out, nil
}

// readFile merges the config file into v after checking that it names only
// known keys.
func (l *configLoader) readFile(v *viper.Viper, path string) error {
	f := viper.New()
	f.SetConfigFile(path)
	if filepath.Ext(path) == "" {
		f.SetConfigType("yaml")
	}
	if err := f.ReadInConfig(); err != nil {
		var nf viper.ConfigFileNotFoundError
		if errors.As(err, &nf) || errors.Is(err, os.ErrNotExist) {
			return configErrorf("config file %s: not found", path)
		}
		return configErrorf("config file %s: %v", path, err)
	}
	known := make(map[string]bool, len(l.keys))
	for _, k := range l.keys {
		known[k.key] = true
	}
	var unknown []string
	for _, key := range f.AllKeys() {
		if !known[key] {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return configErrorf("config file %s: unknown key %s", path, strings.Join(unknown, ", "))
	}
	if err := v.MergeConfigMap(f.AllSettings()); err != nil {
		return configErrorf("config file %s: %v", path, err)
	}
	return nil
}

// isSet reports whether key was given by flag, environment or file (not
// just defaulted).
func (l *configLoader) isSet(key string) bool {
	if fl := l.fs.Lookup(strings.ReplaceAll(key, ".", "-")); fl != nil && fl.Changed {
		return true
	}
	return l.v != nil && l.v.InConfig(key) ||
		l.getenv("SILT_"+strings.ToUpper(strings.ReplaceAll(key, ".", "_"))) != ""
}

// settings is everything `silt agent` and `silt dev` need besides the
// agent.Config itself.
type settings struct {
	Agent        agent.Config
	Cache        cache.Config // the block cache the command builds and hands to the agent
	BucketURL    string
	MetastoreURL string
	HTTPListen   string
	HTTPPprof    bool // http.pprof: serve /debug/pprof/
	LogLevel     slog.Level
	LogFormat    string // json or text
}

// parseSettings turns raw key values into settings. Every error names its
// key. It does not check that required URLs are present; the commands do.
func parseSettings(raw map[string]string, stderrIsTerminal bool) (settings, error) {
	s := settings{Agent: agent.DefaultConfig(), Cache: cache.DefaultConfig()}
	p := parser{raw: raw}
	a := &s.Agent
	a.Listen = p.str("listen")
	a.Advertise = p.str("advertise")
	a.Zone = p.str("zone")
	a.ID = p.str("agent.id")
	a.NodeID = int32(p.int("node.id", math.MaxInt32))
	a.ClusterID = p.str("cluster.id")
	s.BucketURL = p.str("bucket.url")
	s.MetastoreURL = p.str("metastore.url")
	a.FlushInterval = p.duration("flush.interval")
	a.FlushBytes = p.size("flush.bytes")
	a.BufferBytes = p.size("buffer.bytes")
	a.MaxUploads = int(p.int("flush.max.uploads", math.MaxInt32))
	a.Wire.MaxRequestBytes = int32(p.sizeMax("max.request.bytes", math.MaxInt32))
	a.Wire.MaxInflightRequestBytes = p.size("queued.max.request.bytes")
	a.FetchMaxBytes = int32(p.sizeMax("fetch.max.bytes", math.MaxInt32))
	a.FetchSessionSlots = int(p.int("max.incremental.fetch.session.cache.slots", math.MaxInt32))
	a.AutoCreateTopics = p.bool("auto.create.topics")
	a.DefaultPartitions = int32(p.int("num.partitions", math.MaxInt32))
	a.TxnMaxTimeout = p.millis("transaction.max.timeout.ms")
	a.GroupProtocols = p.list("group.coordinator.rebalance.protocols")
	a.ConsumerSessionTimeout = p.millis("group.consumer.session.timeout.ms")
	a.ConsumerHeartbeatInterval = p.millis("group.consumer.heartbeat.interval.ms")
	a.ConsumerMigrationPolicy = p.str("group.consumer.migration.policy")
	a.ShareSessionTimeout = p.millis("group.share.session.timeout.ms")
	a.ShareHeartbeatInterval = p.millis("group.share.heartbeat.interval.ms")
	a.ShareMaxSize = int(p.int("group.share.max.size", math.MaxInt32))
	a.ShareRecordLockDuration = p.millis("group.share.record.lock.duration.ms")
	a.ShareDeliveryCountLimit = int(p.int("group.share.delivery.count.limit", math.MaxInt32))
	a.SharePartitionMaxRecordLocks = int(p.int("group.share.partition.max.record.locks", math.MaxInt32))
	a.ShareSessionSlots = int(p.int("group.share.max.share.sessions", math.MaxInt32))
	a.ShareAutoOffsetReset = p.str("share.auto.offset.reset")
	a.ShareIsolationLevel = p.str("share.isolation.level")
	s.Cache.MemoryBytes = p.size("cache.memory.bytes")
	s.Cache.BlockSize = p.size("cache.block.bytes")
	s.Cache.DiskDir = p.str("cache.disk.dir")
	s.Cache.DiskBytes = p.size("cache.disk.bytes")
	s.HTTPListen = p.str("http.listen")
	a.ShutdownGrace = p.duration("shutdown.grace")
	a.ShutdownDrain = p.duration("shutdown.drain")
	a.Heartbeat = p.duration("membership.heartbeat")
	a.MembershipTTL = p.duration("membership.ttl")
	a.OrphanMinAge = p.duration("orphan.min.age")
	a.JanitorInterval = p.duration("janitor.interval")
	a.CompactionInterval = p.duration("compaction.interval")
	a.CompactionSegmentBytes = p.size("compaction.segment.bytes")
	a.CompactionDedupeBufferBytes = p.size("compaction.dedupe.buffer.bytes")
	a.GCGrace = p.duration("gc.grace")
	a.SASL.Mechanisms = p.list("sasl.mechanisms")
	a.SASL.OAuthBearer.JWKSURL = p.str("sasl.oauthbearer.jwks.url")
	a.SASL.OAuthBearer.Issuer = p.str("sasl.oauthbearer.expected.issuer")
	a.SASL.OAuthBearer.Audience = p.str("sasl.oauthbearer.expected.audience")
	a.SASL.OAuthBearer.SubClaim = p.str("sasl.oauthbearer.sub.claim.name")
	a.SASL.MaxReauth = p.millis("connections.max.reauth.ms")
	a.Wire.FailedAuthenticationDelay = p.millis("connection.failed.authentication.delay.ms")
	if a.Wire.FailedAuthenticationDelay == 0 {
		a.Wire.FailedAuthenticationDelay = -1 // wire: negative is none, zero the default
	}
	a.Authorizer = p.str("authorizer")
	if su, err := acl.ParseSuperUsers(p.str("super.users")); err != nil {
		p.fail(err)
	} else {
		a.SuperUsers = su
	}
	a.AllowEveryoneIfNoACL = p.bool("allow.everyone.if.no.acl.found")
	s.LogLevel, s.LogFormat = p.logging(stderrIsTerminal)
	parseListenerSettings(&p, &s)
	if p.err != nil {
		return settings{}, p.err
	}
	if s.HTTPListen != "" {
		if err := checkHostPort(s.HTTPListen); err != nil {
			return settings{}, configErrorf("http.listen: %q is not host:port: %v", s.HTTPListen, err)
		}
	}
	// Validate on a copy: it fills derived values (agent id, advertise) that
	// the command decides itself once it knows the real listen address.
	check := s.Agent
	check.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := check.Validate(); err != nil {
		return settings{}, &configError{err}
	}
	if err := s.Cache.Validate(); err != nil {
		return settings{}, &configError{err}
	}
	return s, nil
}

// parser collects the first error of a sequence of key conversions.
type parser struct {
	raw map[string]string
	err error
}

func (p *parser) fail(err error) {
	if p.err == nil {
		p.err = &configError{err}
	}
}

func (p *parser) str(key string) string { return p.raw[key] }

func (p *parser) duration(key string) time.Duration {
	s := p.raw[key]
	d, err := time.ParseDuration(s)
	if err != nil {
		p.fail(fmt.Errorf("%s: invalid duration %q (want e.g. 100ms, 30s)", key, s))
	}
	return d
}

func (p *parser) size(key string) int64 { return p.sizeMax(key, math.MaxInt64) }

func (p *parser) sizeMax(key string, max int64) int64 {
	s := p.raw[key]
	n, err := parseSize(s)
	if err != nil {
		p.fail(fmt.Errorf("%s: %w", key, err))
		return 0
	}
	if n > max {
		p.fail(fmt.Errorf("%s: %s is more than the maximum %d", key, s, max))
	}
	return n
}

func (p *parser) int(key string, max int64) int64 {
	s := p.raw[key]
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		p.fail(fmt.Errorf("%s: invalid integer %q", key, s))
		return 0
	}
	if n > max || n < math.MinInt32 {
		p.fail(fmt.Errorf("%s: %d is out of range", key, n))
	}
	return n
}

// list splits a comma-separated value, dropping blanks.
func (p *parser) list(key string) []string {
	var out []string
	for _, s := range strings.Split(p.raw[key], ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// millis reads a non-negative count of milliseconds, Kafka's *.ms keys.
func (p *parser) millis(key string) time.Duration {
	n := p.int(key, math.MaxInt32)
	if n < 0 {
		p.fail(fmt.Errorf("%s: must not be negative, got %d", key, n))
	}
	return time.Duration(n) * time.Millisecond
}

func (p *parser) bool(key string) bool {
	s := p.raw[key]
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.fail(fmt.Errorf("%s: invalid boolean %q (want true or false)", key, s))
	}
	return b
}

func (p *parser) logging(stderrIsTerminal bool) (slog.Level, string) {
	var level slog.Level
	switch s := strings.ToLower(p.raw["log.level"]); s {
	case "debug":
		level = slog.LevelDebug
	case "info", "":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		p.fail(fmt.Errorf("log.level: invalid level %q (want debug, info, warn or error)", p.raw["log.level"]))
	}
	format := strings.ToLower(p.raw["log.format"])
	switch format {
	case "json", "text":
	case "":
		format = "json"
		if stderrIsTerminal {
			format = "text"
		}
	default:
		p.fail(fmt.Errorf("log.format: invalid format %q (want json or text)", p.raw["log.format"]))
	}
	return level, format
}

// sizeUnits maps lower-cased suffixes to multipliers: IEC units are powers
// of 1024, SI units powers of 1000, as their names say.
var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"tb":  1e12,
}

// parseSize parses a non-negative byte count: a plain integer, or an integer
// followed by a unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB; any case,
// optional space): 8MiB, 64KiB, 1GiB, 1MB, 1048576.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("invalid size %q (want e.g. 8MiB, 64KiB, 1GB, 1048576)", s)
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (want B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, strings.TrimSpace(t[i:]))
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n * mult, nil
}

// formatSize is parseSize's inverse for defaults: the largest exact IEC unit.
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}
