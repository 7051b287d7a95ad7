package agent

// Leader epochs in requests (KIP-320): Fetch v9+, ListOffsets v4+ and
// OffsetForLeaderEpoch v2+ carry the leader epoch the client's metadata
// gave it for each partition. Silt's leader epoch is the membership epoch
// (cluster.View.LeaderEpoch), so it moves whenever an agent joins or
// leaves — exactly when the client's metadata (which agents exist, which
// one to ask for what) went stale.
//
// Kafka answers a request with an older epoch FENCED_LEADER_EPOCH, and
// clients refresh their metadata at once. That matters more here than in
// Kafka: an agent that left is still in the broker list of every client
// that has not refreshed since, and clients pick from that list when they
// look for a coordinator; once the agent has exited, such a client can
// dial it twice in a row and give up (franz-go surfaces that as a group
// session error). Fencing makes every consumer refresh within one fetch of
// the change, while the leaving agent is still there to answer.
//
// A newer epoch than this agent's means our view lags the store: we reread
// it once per request. If it still lags the answer is UNKNOWN_LEADER_EPOCH
// (retriable), as in Kafka. If the reread fails (metastore down) the
// request is served: Silt never truncates, so data read under an old view
// is still right, and refusing reads for a metastore outage would turn a
// membership change into an outage of every fetch.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
)

// epochCheck compares the leader epochs of one request's partitions with
// this agent's view, rereading the view at most once.
type epochCheck struct {
	a         *Agent
	current   int32
	refreshed bool // the view was reread for this request
	unsure    bool // the reread failed: newer epochs are served
}

func (a *Agent) epochCheck() *epochCheck {
	return &epochCheck{a: a, current: a.members.View().LeaderEpoch()}
}

// code returns the error for a partition requested at clientEpoch (-1: the
// client did not say, nothing to check), or 0.
func (e *epochCheck) code(ctx context.Context, clientEpoch int32) int16 {
	if clientEpoch < 0 || clientEpoch == e.current {
		return 0
	}
	if clientEpoch > e.current && !e.refreshed {
		e.refreshed = true
		if err := e.a.members.Refresh(ctx); err != nil {
			e.unsure = true
		} else {
			e.current = e.a.members.View().LeaderEpoch()
		}
	}
	switch {
	case clientEpoch < e.current:
		return kerr.FencedLeaderEpoch.Code
	case clientEpoch > e.current && !e.unsure:
		return kerr.UnknownLeaderEpoch.Code
	}
	return 0
}
