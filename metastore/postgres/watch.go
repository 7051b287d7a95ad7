package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/siltstream/silt/metastore"
)

var _ metastore.CommitWatcher = (*Store)(nil)

// WatchCommits implements metastore.CommitWatcher with LISTEN on a
// connection of its own: commit_flush NOTIFYs silt_commits with "agent\t
// segment key", DeleteTopic NOTIFYs silt_topics with "seq\ttopic id (hex)",
// ACL changes NOTIFY silt_acls, client quota changes silt_quotas, agents
// joining or leaving (a new membership epoch) silt_membership, moves of a log start offset silt_logstart
// with "topic id (hex)\tpartition\tlog start", offset commits silt_offsets
// with their partition of __consumer_offsets, index swaps that removed
// records (keyed compaction) silt_replaced with "topic id (hex)\tpartition".
// The channels share the connection, so
// reports keep commit order.
func (s *Store) WatchCommits(ctx context.Context, h metastore.CommitHandler) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("watch commits: %w", err)
	}
	// The connection carries LISTEN state; never hand it back to the pool.
	raw := conn.Hijack()
	defer raw.Close(context.Background())
	if _, err := raw.Exec(ctx, "LISTEN silt_commits; LISTEN silt_topics; LISTEN silt_acls; LISTEN silt_quotas; LISTEN silt_membership; LISTEN silt_logstart; LISTEN silt_offsets; LISTEN silt_replaced"); err != nil {
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
	every, timeout := s.keepalive()
	for {
		// Wait a bounded time; when the connection has been idle that long,
		// make sure it still answers. A half-open connection (the server or
		// the path to it gone silent) would otherwise hold this wait, and
		// the agent's view, until TCP gives up, minutes later.
		wctx, cancel := context.WithTimeout(ctx, every)
		n, err := raw.WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) && !raw.IsClosed() {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			_, err = raw.Exec(pctx, "SELECT 1")
			cancel()
			if err != nil {
				return fmt.Errorf("watch commits: keepalive: %w", err)
			}
			continue // notifications that came with the answer are buffered
		}
		if err != nil {
			return fmt.Errorf("watch commits: %w", err)
		}
		if n.Channel == "silt_membership" {
			if h.MembershipChanged != nil {
				h.MembershipChanged()
			}
			continue
		}
		if n.Channel == "silt_offsets" {
			if part, err := strconv.ParseInt(n.Payload, 10, 32); err == nil && h.OffsetsCommitted != nil {
				h.OffsetsCommitted(int32(part))
			}
			continue
		}
		a, b, ok := strings.Cut(n.Payload, "\t")
		if !ok {
			continue
		}
		switch n.Channel {
		case "silt_acls":
			if h.ACLsChanged != nil {
				h.ACLsChanged()
			}
		case "silt_quotas":
			if h.QuotasChanged != nil {
				h.QuotasChanged()
			}

		case "silt_commits":
			if h.Commit != nil {
				h.Commit(a, b)
			}
		case "silt_logstart":
			tp, ls, ok := parseLogStartNotice(a, b)
			if !ok {
				return fmt.Errorf("watch commits: bad log start notice %q", n.Payload)
			}
			if h.LogStartMoved != nil {
				h.LogStartMoved(tp, ls)
			}
		case "silt_replaced":
			tp, _, ok := parseLogStartNotice(a, b+"\t0")
			if !ok {
				return fmt.Errorf("watch commits: bad index replacement notice %q", n.Payload)
			}
			if h.IndexReplaced != nil {
				h.IndexReplaced(tp)
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

// Keepalive defaults: a LISTEN connection idle this long is pinged, and
// one whose ping is not answered within the timeout is given up.
const (
	defaultWatchPingEvery   = 5 * time.Second
	defaultWatchPingTimeout = 5 * time.Second
)

// SetWatchKeepalive sets how long WatchCommits lets its connection sit
// idle before pinging it, and how long it waits for the answer, for
// watches started afterwards. Non-positive values keep the defaults.
func (s *Store) SetWatchKeepalive(every, timeout time.Duration) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	s.pingEvery, s.pingTimeout = every, timeout
}

func (s *Store) keepalive() (every, timeout time.Duration) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	every, timeout = defaultWatchPingEvery, defaultWatchPingTimeout
	if s.pingEvery > 0 {
		every = s.pingEvery
	}
	if s.pingTimeout > 0 {
		timeout = s.pingTimeout
	}
	return every, timeout
}

// TopicDeletionSeen implements metastore.CommitWatcher. It asks what
// CreateTopic asks before taking a deleted topic's name.
func (s *Store) TopicDeletionSeen(ctx context.Context, name string) (bool, error) {
	var pending bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM topic_deletions d JOIN agents a ON a.deletions_seen < d.seq
		WHERE d.name = $1 AND a.expires_at > clock_timestamp())`, name).Scan(&pending); err != nil {
		return false, fmt.Errorf("topic %s deletion acknowledgements: %w", name, err)
	}
	return !pending, nil
}

// AckTopicDeletions implements metastore.CommitWatcher.
func (s *Store) AckTopicDeletions(ctx context.Context, agentID string, seq int64) error {
	if _, err := s.pool.Exec(ctx, "UPDATE agents SET deletions_seen = greatest(deletions_seen, $2) WHERE id = $1", agentID, seq); err != nil {
		return fmt.Errorf("acknowledge topic deletions of agent %s: %w", agentID, err)
	}
	return nil
}

// parseLogStartNotice decodes the payload of a silt_logstart notification,
// already cut at its first tab: topic id (hex), then "partition\tlog start".
func parseLogStartNotice(idHex, rest string) (metastore.TopicPartition, int64, bool) {
	var tp metastore.TopicPartition
	idb, err := hex.DecodeString(idHex)
	if err != nil || len(idb) != len(tp.Topic) {
		return tp, 0, false
	}
	copy(tp.Topic[:], idb)
	ps, ls, ok := strings.Cut(rest, "\t")
	p, err1 := strconv.ParseInt(ps, 10, 32)
	off, err2 := strconv.ParseInt(ls, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return tp, 0, false
	}
	tp.Partition = int32(p)
	return tp, off, true
}
