package agent

import (
	"context"

	"github.com/siltstream/silt/cluster"
	"github.com/siltstream/silt/metastore"
)

// membershipWatcher passes the store's membership notifications to the
// agent's view, and has it reread the membership whenever the watch
// (re)starts, in case one was missed meanwhile. Agents then agree on the
// view within a notification's delay of an agent joining or leaving, not
// a heartbeat's: a client told by one agent that a newly joined agent
// coordinates its group asks another for that agent's address next, and
// must find it there.
type membershipWatcher struct {
	metastore.CommitWatcher
	members *cluster.Membership
}

func (w membershipWatcher) WatchCommits(ctx context.Context, h metastore.CommitHandler) error {
	ready := h.Ready
	h.Ready = func(seq int64) error {
		w.members.Changed()
		if ready != nil {
			return ready(seq)
		}
		return nil
	}
	h.MembershipChanged = w.members.Changed
	return w.CommitWatcher.WatchCommits(ctx, h)
}
