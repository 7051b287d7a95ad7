package agent

import (
	"context"
	"time"

	"github.com/siltstream/silt/metastore"
)

// watchCommits keeps this agent's offsets current with flushes other agents
// commit: the store reports each commit once, the agent reads that
// segment's index rows once, and long polls on its partitions wake. No
// fetch has to ask the store whether anything moved.
func (a *Agent) watchCommits(ctx context.Context, w metastore.CommitWatcher) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := w.WatchCommits(ctx, func() { backoff = 100 * time.Millisecond }, func(agentID, key string) {
			if agentID == a.cfg.ID {
				return // our own commits are applied by the committer
			}
			rows, err := a.store.IndexBySegment(ctx, key)
			if err != nil {
				a.log.Warn("read index of another agent's segment", "segment", key, "err", err)
				a.topics.invalidate() // we may now miss its offsets: reload on next use
				return
			}
			for _, e := range rows {
				if p := a.topics.partitionOf(e.TopicPartition); p != nil {
					p.committed(e)
					// The notification does not say whether the rows hold
					// transactional data: read_committed readers re-read
					// the LSO once per such commit.
					p.lsoChanged()
				}
			}
		})
		if ctx.Err() != nil {
			return
		}
		// Commits made while we were not listening are unknown: reload
		// offsets from the store on next use.
		a.topics.invalidate()
		a.log.Warn("commit notifications interrupted; retrying", "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
