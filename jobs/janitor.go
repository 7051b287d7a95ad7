package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/siltstream/silt/metastore"
)

// txnIDExpiry is Kafka's default transactional.id.expiration.ms: an idle
// transactional id is forgotten after a week.
const txnIDExpiry = 7 * 24 * time.Hour

// orphanLease names the lease whose holder runs the janitor's work, so
// that in a cluster one agent at a time does it. The name predates
// retention; it is kept so that an agent of an older version, which
// collected orphans under it, never runs beside a newer one.
const orphanLease = "janitor/orphans"

// JanitorStore is what the janitor itself needs from the metastore; its
// retention and collector bring their own stores.
type JanitorStore interface {
	metastore.LeaseStore
	ExpireProducers(ctx context.Context, olderThan time.Time) (int, error)
	ExpireTxns(ctx context.Context, olderThan time.Time) (int, error)
}

// Janitor runs the background work on the bucket's data and the store's
// idle state, on whichever agent holds its lease: every Interval
// (compaction.interval) retention then garbage collection, so that data
// retention expires becomes garbage in the same pass; every
// ExpiryInterval (janitor.interval) the expiry of idle producer state and
// transactional ids.
//
// One lease rather than per-partition leaders: retention is a few store
// queries per partition and no bucket traffic, and the collector's
// deletes are cheap, so one agent keeps up with a large cluster; compaction,
// which reads and writes the bucket, is where spreading work pays.
type Janitor struct {
	AgentID        string
	Store          JanitorStore
	Log            *slog.Logger
	Interval       time.Duration
	ExpiryInterval time.Duration
	// ProducerExpiry is how long an idempotent producer's sequence state is
	// kept after its last write (Kafka's producer.id.expiration.ms);
	// zero means one day, Kafka's default.
	ProducerExpiry time.Duration
	Retention      *Retention
	GC             *GC
}

// Run does the work while holding the lease, until ctx ends.
func (j *Janitor) Run(ctx context.Context) {
	t := time.NewTicker(j.Interval)
	defer t.Stop()
	var lastExpiry time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		held, err := j.Store.AcquireLease(ctx, orphanLease, j.AgentID, 2*j.Interval)
		if err != nil || !held {
			continue
		}
		if time.Since(lastExpiry) >= j.ExpiryInterval {
			lastExpiry = time.Now()
			j.expire(ctx)
		}
		j.RunOnce(ctx)
	}
}

// RunOnce applies retention and collects garbage once, logging what it did.
func (j *Janitor) RunOnce(ctx context.Context) {
	if j.Retention != nil {
		a, err := j.Retention.ApplyOnce(ctx)
		if err != nil && ctx.Err() == nil {
			j.Log.Warn("retention failed", "err", err)
		}
		if a.Moved > 0 {
			j.Log.Info("retention moved log start offsets", "partitions", a.Moved, "rows", a.ExpiredRows, "bytes", a.ExpiredBytes)
		}
	}
	if j.GC != nil {
		c, err := j.GC.CollectOnce(ctx)
		if err != nil && ctx.Err() == nil {
			j.Log.Warn("garbage collection failed", "err", err, "deleted", c.Deleted)
		}
		if c != (Collected{}) {
			j.Log.Info("garbage collected", "orphans_doomed", c.Orphans, "segments_doomed", c.Unreferenced,
				"deleted", c.Deleted, "deleted_bytes", c.DeletedBytes)
		}
	}
}

func (j *Janitor) expire(ctx context.Context) {
	expiry := j.ProducerExpiry
	if expiry == 0 {
		expiry = 24 * time.Hour
	}
	if n, err := j.Store.ExpireProducers(ctx, time.Now().Add(-expiry)); err != nil {
		j.Log.Warn("producer state expiry failed", "err", err)
	} else if n > 0 {
		j.Log.Info("expired idle producer state", "count", n)
	}
	if n, err := j.Store.ExpireTxns(ctx, time.Now().Add(-txnIDExpiry)); err != nil {
		j.Log.Warn("transactional id expiry failed", "err", err)
	} else if n > 0 {
		j.Log.Info("expired idle transactional ids", "count", n)
	}
}
