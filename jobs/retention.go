package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/siltstream/silt/metastore"
)

// Kafka's defaults for the topic configs retention reads.
const (
	defaultRetentionMs    = 7 * 24 * 60 * 60 * 1000 // retention.ms: a week
	defaultRetentionBytes = -1                      // retention.bytes: unlimited
)

// RetentionStore is what retention needs from the metastore.
type RetentionStore interface {
	Topics(ctx context.Context) ([]metastore.Topic, error)
	ApplyRetention(ctx context.Context, tp metastore.TopicPartition, p metastore.RetentionPolicy) (metastore.RetentionResult, error)
}

// Retention applies topics' retention.ms and retention.bytes to every
// partition, moving log start offsets (see metastore.RetentionStore); the
// objects whose rows all expire are then the garbage collector's. Topics
// whose cleanup.policy does not include delete are left alone, as in
// Kafka.
type Retention struct {
	Store RetentionStore
	Log   *slog.Logger
	// OnLogStart, if set, is told of every log start offset moved, so the
	// agent running the job updates its own view at once (other agents
	// learn it from the store's notifications).
	OnLogStart func(tp metastore.TopicPartition, logStart int64)
	Metrics    *Metrics         // optional
	Now        func() time.Time // nil: time.Now
}

// Applied says what one pass did.
type Applied struct {
	Moved        int   // partitions whose log start moved
	ExpiredRows  int64 // index rows removed
	ExpiredBytes int64 // their bytes
}

// ApplyOnce applies retention to every partition of every topic once. A
// partition that fails is logged and skipped; the first error is returned
// after the pass.
func (r *Retention) ApplyOnce(ctx context.Context) (Applied, error) {
	var a Applied
	topics, err := r.Store.Topics(ctx)
	if err != nil {
		return a, fmt.Errorf("list topics: %w", err)
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	var first error
	for _, t := range topics {
		p, ok := policyOf(t.Config, now())
		if !ok {
			continue
		}
		for i := int32(0); i < t.Partitions; i++ {
			tp := metastore.TopicPartition{Topic: t.ID, Partition: i}
			res, err := r.Store.ApplyRetention(ctx, tp, p)
			if err != nil {
				if ctx.Err() != nil {
					return a, ctx.Err()
				}
				r.Log.Warn("retention failed", "topic", t.Name, "partition", i, "err", err)
				if first == nil {
					first = err
				}
				continue
			}
			if !res.Moved {
				continue
			}
			a.Moved++
			a.ExpiredRows += res.ExpiredRows
			a.ExpiredBytes += res.ExpiredBytes
			if r.Metrics != nil {
				r.Metrics.retentionBytes.Add(float64(res.ExpiredBytes))
			}
			if r.OnLogStart != nil {
				r.OnLogStart(tp, res.LogStartOffset)
			}
		}
	}
	return a, first
}

// policyOf reads a topic's retention from its explicit configs (absent
// keys take Kafka's defaults). ok is false when nothing can expire:
// cleanup.policy without delete, or no limit on time or bytes. A value
// that does not parse (the agent validates configs, so only a store edited
// by hand) counts as the default.
func policyOf(config map[string]string, now time.Time) (metastore.RetentionPolicy, bool) {
	if cp, ok := config["cleanup.policy"]; ok && !strings.Contains(cp, "delete") {
		return metastore.RetentionPolicy{}, false
	}
	ms := configInt(config, "retention.ms", defaultRetentionMs)
	bytes := configInt(config, "retention.bytes", defaultRetentionBytes)
	p := metastore.RetentionPolicy{ExpireBefore: math.MinInt64, MaxBytes: -1}
	if ms >= 0 {
		p.ExpireBefore = now.UnixMilli() - ms
	}
	if bytes >= 0 {
		p.MaxBytes = bytes
	}
	return p, ms >= 0 || bytes >= 0
}

func configInt(config map[string]string, key string, def int64) int64 {
	v, ok := config[key]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < -1 {
		return def
	}
	return n
}
