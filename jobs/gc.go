package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
)

// gcBatch bounds the candidates doomed, and the objects deleted, per store
// round trip.
const gcBatch = 1000

// GCStore is what the garbage collector needs from the metastore.
type GCStore interface {
	Orphans(ctx context.Context, olderThan time.Time) ([]metastore.Upload, error)
	ForgetUpload(ctx context.Context, key string) (forgotten bool, err error)
	metastore.GCStore
}

// GC is the one path by which Silt deletes objects from the bucket (see
// metastore.GCStore for the protocol). Each pass:
//
//  1. dooms orphans: uploads recorded more than OrphanMinAge ago and never
//     committed (the forget refuses their commit from then on; one that
//     committed after it was listed is not forgotten, and stays);
//  2. dooms committed segments that lost their last index row (retention,
//     DeleteRecords, a deleted topic);
//  3. deletes objects doomed more than Grace ago, and forgets them.
//
// Grace is what lets a reader that resolved an index row just before it
// was pruned still read its bytes: the row's object lives at least that
// long after the row is gone. Run it under a lease (Janitor); two
// collectors at once are still safe, only wasteful.
type GC struct {
	Store        GCStore
	Bucket       objectstore.Bucket
	Log          *slog.Logger
	OrphanMinAge time.Duration // uploads younger than this may still commit
	Grace        time.Duration // gc.grace
	Metrics      *Metrics      // optional
}

// Collected says what one pass did.
type Collected struct {
	Orphans      int   // uploads doomed as orphans
	Unreferenced int   // committed segments doomed
	Deleted      int   // objects deleted from the bucket
	DeletedBytes int64 // their bytes as recorded at commit
}

// CollectOnce runs one pass. It stops at the first error; what it did so
// far is reported and stays done.
func (g *GC) CollectOnce(ctx context.Context) (Collected, error) {
	var c Collected
	orphans, err := g.Store.Orphans(ctx, time.Now().Add(-g.OrphanMinAge))
	if err != nil {
		return c, fmt.Errorf("list orphans: %w", err)
	}
	for _, o := range orphans {
		forgotten, err := g.Store.ForgetUpload(ctx, o.Key)
		if err != nil {
			return c, fmt.Errorf("forget orphan %s: %w", o.Key, err)
		}
		if forgotten {
			c.Orphans++
		}
	}
	for {
		n, more, err := g.Store.DoomUnreferenced(ctx, gcBatch)
		if err != nil {
			return c, err
		}
		c.Unreferenced += n
		if !more {
			break
		}
	}
	for {
		objs, err := g.Store.DoomedObjects(ctx, g.Grace, gcBatch)
		if err != nil {
			return c, err
		}
		keys := make([]string, 0, len(objs))
		var bytes int64
		for _, o := range objs {
			if err := g.Bucket.Delete(ctx, o.Key); err != nil {
				g.forget(ctx, keys, bytes, &c)
				return c, fmt.Errorf("delete %s: %w", o.Key, err)
			}
			keys = append(keys, o.Key)
			bytes += o.Size
		}
		if err := g.forget(ctx, keys, bytes, &c); err != nil {
			return c, err
		}
		if len(objs) < gcBatch {
			break
		}
	}
	if g.Metrics != nil {
		if objs, bytes, err := g.Store.GCBacklog(ctx); err == nil {
			g.Metrics.gcBacklogObjects.Set(float64(objs))
			g.Metrics.gcBacklogBytes.Set(float64(bytes))
		}
		if objs, bytes, err := g.Store.Holdings(ctx); err == nil {
			g.Metrics.bucketObjects.Set(float64(objs))
			g.Metrics.bucketBytes.Set(float64(bytes))
		}
	}
	return c, nil
}

// forget drops deleted objects from the queue and counts them.
func (g *GC) forget(ctx context.Context, keys []string, bytes int64, c *Collected) error {
	if len(keys) == 0 {
		return nil
	}
	if err := g.Store.ForgetDoomed(ctx, keys); err != nil {
		return err // deleted again next pass, harmlessly
	}
	c.Deleted += len(keys)
	c.DeletedBytes += bytes
	if g.Metrics != nil {
		g.Metrics.gcDeletedObjects.Add(float64(len(keys)))
		g.Metrics.gcDeletedBytes.Add(float64(bytes))
	}
	return nil
}
