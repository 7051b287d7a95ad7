package agent

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/siltstream/silt/partition"
)

// topicConfigDef is one topic config Silt knows, with Kafka's name and
// default. Keys Silt does not know are rejected with INVALID_CONFIG rather
// than stored and silently ignored.
type topicConfigDef struct {
	name     string
	def      string
	validate func(string) error
	// note says how Silt treats the key, where it differs from Kafka.
	note string
}

var topicConfigDefs = []topicConfigDef{
	{name: "cleanup.policy", def: "delete", validate: oneOf("delete", "compact", "compact,delete", "delete,compact"),
		note: "delete: retention applies; compact: keyed compaction keeps each key's latest record (compact alone turns retention off)"},
	{name: "compression.type", def: "producer", validate: oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"),
		note: "stored; batches are kept as the producer compressed them"},
	{name: "retention.ms", def: "604800000", validate: intAtLeast(-1), note: "by batches' max timestamp, a whole index row (one flush of the partition) at a time"},
	{name: "retention.bytes", def: "-1", validate: intAtLeast(-1), note: "per partition, a whole index row (one flush of the partition) at a time"},
	{name: "max.message.bytes", def: "1048588", validate: intAtLeast(0)},
	{name: "message.timestamp.type", def: "CreateTime", validate: oneOf("CreateTime")},
	{name: "segment.bytes", def: "1073741824", validate: intAtLeast(14), note: "accepted for compatibility; segments are cut by flush"},
	{name: "segment.ms", def: "604800000", validate: intAtLeast(1), note: "accepted for compatibility; segments are cut by flush"},
	{name: "min.insync.replicas", def: "1", validate: intAtLeast(1), note: "accepted for compatibility; durability is the bucket's"},
	{name: "unclean.leader.election.enable", def: "false", validate: oneOf("true", "false"), note: "accepted for compatibility"},
	{name: "min.compaction.lag.ms", def: "0", validate: intAtLeast(0), note: "by index rows' max timestamps: a row is cleaned once all its records are older"},
	{name: "delete.retention.ms", def: "86400000", validate: intAtLeast(0), note: "tombstones stay this long after the pass that first cleaned them (delete horizon in the batch, KIP-534)"},
	{name: "max.compaction.lag.ms", def: "9223372036854775807", validate: intAtLeast(1), note: "cleaned by the next compaction.interval once the oldest dirty record is older, whatever the dirty ratio"},
	{name: "min.cleanable.dirty.ratio", def: "0.5", validate: ratio},
	// Kafka's other topic configs, which tools such as Kafka Streams set:
	// accepted and described, with no effect in Silt (no local log files,
	// no replicas to throttle, no tiering: the bucket is the log).
	{name: "segment.index.bytes", def: "10485760", validate: intAtLeast(4), note: compat},
	{name: "segment.jitter.ms", def: "0", validate: intAtLeast(0), note: compat},
	{name: "index.interval.bytes", def: "4096", validate: intAtLeast(0), note: compat},
	{name: "flush.messages", def: "9223372036854775807", validate: intAtLeast(1), note: compat},
	{name: "flush.ms", def: "9223372036854775807", validate: intAtLeast(0), note: compat},
	{name: "file.delete.delay.ms", def: "60000", validate: intAtLeast(0), note: compat},
	{name: "preallocate", def: "false", validate: oneOf("true", "false"), note: compat},
	{name: "message.timestamp.difference.max.ms", def: "9223372036854775807", validate: intAtLeast(0), note: compat},
	{name: "message.timestamp.before.max.ms", def: "9223372036854775807", validate: intAtLeast(0), note: compat},
	{name: "message.timestamp.after.max.ms", def: "9223372036854775807", validate: intAtLeast(0), note: compat},
	{name: "message.downconversion.enable", def: "true", validate: oneOf("true", "false"), note: compat},
	{name: "leader.replication.throttled.replicas", def: "", validate: anyValue, note: compat},
	{name: "follower.replication.throttled.replicas", def: "", validate: anyValue, note: compat},
	{name: "remote.storage.enable", def: "false", validate: oneOf("true", "false"), note: compat},
	{name: "local.retention.ms", def: "-2", validate: intAtLeast(-2), note: compat},
	{name: "local.retention.bytes", def: "-2", validate: intAtLeast(-2), note: compat},
}

// compat marks configs accepted only so that Kafka tools keep working.
const compat = "accepted for compatibility; no effect in Silt"

func anyValue(string) error { return nil }

// ratio accepts a number from 0 to 1.
func ratio(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		return fmt.Errorf("not a number from 0 to 1")
	}
	return nil
}

func lookupTopicConfig(name string) (topicConfigDef, bool) {
	for _, d := range topicConfigDefs {
		if d.name == name {
			return d, true
		}
	}
	return topicConfigDef{}, false
}

// validateTopicConfig checks one key/value pair.
func validateTopicConfig(name, value string) error {
	d, ok := lookupTopicConfig(name)
	if !ok {
		return fmt.Errorf("unknown topic config %q", name)
	}
	if err := d.validate(value); err != nil {
		return fmt.Errorf("invalid value %q for %s: %v", value, name, err)
	}
	return nil
}

// effectiveTopicConfig merges the topic's explicit configs over defaults.
// isDefault reports which keys are defaults.
func effectiveTopicConfig(set map[string]string) (names []string, values map[string]string, isDefault map[string]bool) {
	values = make(map[string]string, len(topicConfigDefs))
	isDefault = make(map[string]bool, len(topicConfigDefs))
	for _, d := range topicConfigDefs {
		if v, ok := set[d.name]; ok {
			values[d.name] = v
		} else {
			values[d.name] = d.def
			isDefault[d.name] = true
		}
		names = append(names, d.name)
	}
	sort.Strings(names)
	return names, values, isDefault
}

func topicMaxMessageBytes(t *partition.Topic) int {
	v, ok := t.Config["max.message.bytes"]
	if !ok {
		v = "1048588"
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 1048588
	}
	return n
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("must be one of %v", allowed)
	}
}

func intAtLeast(lo int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < lo {
			return fmt.Errorf("must be at least %d", lo)
		}
		return nil
	}
}
