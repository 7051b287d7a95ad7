package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
)

// txnIDExpiry is Kafka's default transactional.id.expiration.ms: an idle
// transactional id is forgotten after a week.
const txnIDExpiry = 7 * 24 * time.Hour

// orphanLease names the lease whose holder collects orphans, so that in a
// cluster one agent at a time does it.
const orphanLease = "janitor/orphans"

// JanitorStore is what the janitor needs from the metastore.
type JanitorStore interface {
	metastore.UploadStore
	metastore.LeaseStore
	ExpireProducers(ctx context.Context, olderThan time.Time) (int, error)
	ExpireTxns(ctx context.Context, olderThan time.Time) (int, error)
}

// Janitor deletes orphaned uploads: objects whose upload was recorded but
// never committed (the agent died, or its commit failed for good). Nothing
// acknowledged is in an orphan, since producers are only answered after the
// commit, and the store refuses to commit an upload the janitor forgot.
type Janitor struct {
	AgentID  string
	Store    JanitorStore
	Bucket   objectstore.Bucket
	Log      *slog.Logger
	Interval time.Duration // how often to look
	MinAge   time.Duration // uploads younger than this may still commit
	// ProducerExpiry is how long an idempotent producer's sequence state is
	// kept after its last write (Kafka's producer.id.expiration.ms);
	// zero means one day, Kafka's default.
	ProducerExpiry time.Duration
}

// Run collects orphans every Interval until ctx ends.
func (j *Janitor) Run(ctx context.Context) {
	t := time.NewTicker(j.Interval)
	defer t.Stop()
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
		if n, err := j.CollectOnce(ctx); err != nil {
			j.Log.Warn("orphan collection failed", "err", err, "deleted", n)
		} else if n > 0 {
			j.Log.Info("deleted orphaned uploads", "count", n)
		}
	}
}

// CollectOnce deletes the orphans older than MinAge and reports how many.
// The record is forgotten before the object is deleted: once forgotten, a
// late commit of that upload is refused, so no index row can point at a
// deleted object. An orphan whose commit landed after it was listed is not
// forgotten, and its object stays.
func (j *Janitor) CollectOnce(ctx context.Context) (int, error) {
	orphans, err := j.Store.Orphans(ctx, time.Now().Add(-j.MinAge))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range orphans {
		forgotten, err := j.Store.ForgetUpload(ctx, o.Key)
		if err != nil {
			return n, err
		}
		if !forgotten {
			continue // committed since it was listed: acknowledged data
		}
		if err := j.Bucket.Delete(ctx, o.Key); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
