package postgres

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/siltstream/silt/metastore"
)

var _ metastore.CommitWatcher = (*Store)(nil)

// WatchCommits implements metastore.CommitWatcher with LISTEN on a
// connection of its own: commit_flush NOTIFYs silt_commits with "agent\t
// segment key", DeleteTopic NOTIFYs silt_topics with "seq\ttopic id (hex)".
// Both channels share the connection, so reports keep commit order.
func (s *Store) WatchCommits(ctx context.Context, h metastore.CommitHandler) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("watch commits: %w", err)
	}
	// The connection carries LISTEN state; never hand it back to the pool.
	raw := conn.Hijack()
	defer raw.Close(context.Background())
	if _, err := raw.Exec(ctx, "LISTEN silt_commits; LISTEN silt_topics"); err != nil {
		return fmt.Errorf("watch commits: listen: %w", err)
	}
	// Read after LISTEN: a deletion numbered above this is reported.
	var seq int64
	if err := raw.QueryRow(ctx, "SELECT seq FROM topic_deletion_counter WHERE id = 1").Scan(&seq); err != nil {
		return fmt.Errorf("watch commits: read topic deletions: %w", err)
	}
	if h.Ready != nil {
		if err := h.Ready(seq); err != nil {
			return fmt.Errorf("watch commits: %w", err)
		}
	}
	for {
		n, err := raw.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("watch commits: %w", err)
		}
		a, b, ok := strings.Cut(n.Payload, "\t")
		if !ok {
			continue
		}
		switch n.Channel {
		case "silt_commits":
			if h.Commit != nil {
				h.Commit(a, b)
			}
		case "silt_topics":
			seq, err1 := strconv.ParseInt(a, 10, 64)
			idb, err2 := hex.DecodeString(b)
			var id metastore.TopicID
			if err1 != nil || err2 != nil || len(idb) != len(id) {
				return fmt.Errorf("watch commits: bad topic deletion notice %q", n.Payload)
			}
			copy(id[:], idb)
			if h.TopicDeleted != nil {
				if err := h.TopicDeleted(id, seq); err != nil {
					return fmt.Errorf("watch commits: %w", err)
				}
			}
		}
	}
}

// AckTopicDeletions implements metastore.CommitWatcher.
func (s *Store) AckTopicDeletions(ctx context.Context, agentID string, seq int64) error {
	if _, err := s.pool.Exec(ctx, "UPDATE agents SET deletions_seen = greatest(deletions_seen, $2) WHERE id = $1", agentID, seq); err != nil {
		return fmt.Errorf("acknowledge topic deletions of agent %s: %w", agentID, err)
	}
	return nil
}
