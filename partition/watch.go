package partition

import (
	"context"
	"log/slog"
	"time"

	"github.com/siltstream/silt/metastore"
)

// WatchCommits keeps the cache current with flushes other agents commit:
// the store reports each commit once, the agent reads that segment's index
// rows once, and long polls on its partitions wake. No fetch has to ask the
// store whether anything moved. Commits by selfID are skipped: the write
// pipeline applies them. It returns when ctx ends.
func (ts *Topics) WatchCommits(ctx context.Context, w metastore.CommitWatcher, selfID string, log *slog.Logger) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		ready := func() {
			backoff = 100 * time.Millisecond
			// Listening again: commits from now on are reported. Those made
			// before — while we were not listening, or by a load that read
			// during the outage — are only in the store: re-read on next use.
			ts.Invalidate()
		}
		err := w.WatchCommits(ctx, ready, func(agentID, key string) {
			if agentID == selfID {
				return // our own commits are applied by the committer
			}
			rows, err := ts.store.IndexBySegment(ctx, key)
			if err != nil {
				log.Warn("read index of another agent's segment", "segment", key, "err", err)
				ts.Invalidate() // we may now miss its offsets: reload on next use
				return
			}
			for _, e := range rows {
				// The notification does not say whether the rows hold
				// transactional data: read_committed readers re-read the
				// LSO once per such commit.
				ts.Committed(e.TopicPartition, []metastore.IndexEntry{e}, true)
			}
		})
		if ctx.Err() != nil {
			return
		}
		// Commits made while we are not listening are unknown: reads go to
		// the store until we listen again (and ready invalidates once more).
		ts.Invalidate()
		log.Warn("commit notifications interrupted; retrying", "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
