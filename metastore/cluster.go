package metastore

import (
	"context"
	"strings"
)

// Membership is the set of live agents and its epoch.
type Membership struct {
	Agents []Agent // ordered by id
	// Epoch moves forward whenever the set of live agents changes. Agents
	// use it as every partition's leader epoch.
	Epoch int64
}

// CommitWatcher is implemented by stores that can tell an agent about
// what other agents change (postgres, through LISTEN/NOTIFY): flushes
// committed and topics deleted. A single-node store does not need it.
//
// A store with a CommitWatcher serves several agents, so a topic deletion
// is not complete until every live agent has acknowledged it
// (AckTopicDeletions): until then CreateTopic refuses the name with
// ErrTopicDeletionPending, and no agent can answer for a re-created topic
// with the old one's data.
type CommitWatcher interface {
	// WatchCommits reports, in the order the store committed them, every
	// flush committed and every topic deleted from now on, by any agent,
	// until ctx ends or the connection fails; it then returns an error.
	// Changes made while it was not listening are not reported: after it
	// returns, the caller must assume it missed some. It also returns an
	// error, rather than wait for TCP to notice, when the connection stops
	// answering while idle.
	WatchCommits(ctx context.Context, h CommitHandler) error
	// AckTopicDeletions records that agentID's view of the topics reflects
	// every topic deletion numbered up to seq. Acknowledgements only move
	// forward.
	AckTopicDeletions(ctx context.Context, agentID string, seq int64) error
	// TopicDeletionSeen reports whether every live agent has acknowledged
	// every deletion of a topic named name, so that none lists it any
	// more. A name never deleted is seen.
	TopicDeletionSeen(ctx context.Context, name string) (bool, error)
}

// CommitHandler receives a CommitWatcher's reports, one at a time. An
// error returned by Ready or TopicDeleted ends WatchCommits with it.
type CommitHandler struct {
	// Ready is called once listening, with the number of the latest topic
	// deletion committed: deletions up to it happened before listening
	// started, later ones will be reported.
	Ready func(deletionSeq int64) error
	// Commit is called for every flush committed, with the committing
	// agent and the segment key.
	Commit func(agentID, segmentKey string)
	// TopicDeleted is called for every topic deleted, with its id and the
	// deletion's number; numbers grow in the order deletions are reported.
	TopicDeleted func(id TopicID, seq int64) error
	// LogStartMoved is called after a partition's log start offset moved
	// (RetentionStore), by any agent, with its new value. Cached index rows
	// below it are gone from the store.
	LogStartMoved func(tp TopicPartition, logStart int64)
	// IndexReplaced is called after a swap that removed records
	// (CompactionStore.ReplaceIndex with Replacement.Removes: keyed
	// compaction), by any agent: cached index rows of tp name records the
	// store's index no longer holds.
	IndexReplaced func(tp TopicPartition)
	// ACLsChanged is called after every change to the stored ACLs
	// (ACLStore), by any agent. It should not block: readers reload
	// elsewhere.
	ACLsChanged func()
	// QuotasChanged is called after every change to the stored client
	// quotas (QuotaStore), by any agent. It should not block.
	QuotasChanged func()
	// MembershipChanged is called after the membership epoch moved (an
	// agent registered, deregistered or lapsed). It should not block.
	MembershipChanged func()
	// OffsetsCommitted is called after committed offsets were written to
	// partition part of __consumer_offsets (OffsetLogStore), by any agent.
	// It should not block: long polls on that partition re-read.
	OffsetsCommitted func(part int32)
}

// AgentListener is one advertised Kafka listener of an agent.
type AgentListener struct {
	Name string // the listener's name, e.g. SSL or INTERNAL
	Addr string // advertised host:port
}

// FormatAgentListeners encodes listeners as the stores keep them:
// NAME://host:port entries separated by commas, as advertised.listeners is
// written.
func FormatAgentListeners(ls []AgentListener) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.Name + "://" + l.Addr
	}
	return strings.Join(parts, ",")
}

// ParseAgentListeners decodes FormatAgentListeners's encoding, skipping
// malformed entries; "" is no listeners.
func ParseAgentListeners(s string) []AgentListener {
	var out []AgentListener
	for _, part := range strings.Split(s, ",") {
		name, addr, ok := strings.Cut(part, "://")
		if ok && name != "" && addr != "" {
			out = append(out, AgentListener{Name: name, Addr: addr})
		}
	}
	return out
}
