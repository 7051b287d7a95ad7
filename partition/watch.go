package partition

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/siltstream/silt/metastore"
)

// WatchCommits keeps the cache current with what other agents change: the
// store reports each flush committed once, the agent reads that segment's
// index rows once, and long polls on its partitions wake, so no fetch has
// to ask the store whether anything moved. Commits by selfID are skipped:
// the write pipeline applies them. Deleted topics are dropped at once and
// the deletion acknowledged to the store (see doc.go). It returns when ctx
// ends.
func (ts *Topics) WatchCommits(ctx context.Context, w metastore.CommitWatcher, selfID string, log *slog.Logger) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := w.WatchCommits(ctx, metastore.CommitHandler{
			Ready: func(seq int64) error {
				backoff = 100 * time.Millisecond
				// Listening again: changes from now on are reported. Those made
				// before — while we were not listening, or by a load that read
				// during the outage — are only in the store: re-read offsets on
				// next use, and list the topics now, dropping those deleted
				// meanwhile; then every deletion up to seq is reflected.
				ts.Invalidate()
				if err := ts.Refresh(ctx); err != nil {
					return err
				}
				return ackDeletions(ctx, w, selfID, seq)
			},
			Commit: func(agentID, key string) {
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
			},
			LogStartMoved: ts.LogStartMoved,
			IndexReplaced: ts.IndexReplaced,
			TopicDeleted: func(id metastore.TopicID, seq int64) error {
				ts.DropID(id)
				return ackDeletions(ctx, w, selfID, seq)
			},
		})
		if ctx.Err() != nil {
			return
		}
		// Changes made while we are not listening are unknown: reads go to
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

// ackDeletions tells the store this agent's cache reflects topic deletions
// up to seq. A failure ends the watch: the reconnect lists the topics and
// acknowledges again.
func ackDeletions(ctx context.Context, w metastore.CommitWatcher, selfID string, seq int64) error {
	if err := w.AckTopicDeletions(ctx, selfID, seq); err != nil {
		return fmt.Errorf("acknowledge topic deletions: %w", err)
	}
	return nil
}
