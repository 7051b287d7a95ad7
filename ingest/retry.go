package ingest

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/siltstream/silt/metastore"
)

// retry calls fn until it succeeds or ctx ends, backing off exponentially
// with jitter (50 ms doubling to 5 s). An outage of the bucket or the store
// is logged and waited out, never fatal. Errors no retry can mend
// (metastore.IsPermanent) are returned at once.
func retry(ctx context.Context, log *slog.Logger, what string, fn func() error) error {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			if attempt > 1 {
				log.Info("recovered", "op", what, "attempts", attempt)
			}
			return nil
		}
		var unknown *metastore.UnknownPartitionsError
		if errors.As(err, &unknown) {
			continue // fn dropped the unknown partitions; try the rest at once
		}
		if metastore.IsPermanent(err) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("retrying", "op", what, "attempt", attempt, "err", err)
		sleep := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-time.After(sleep):
		case <-ctx.Done():
			return nil
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
