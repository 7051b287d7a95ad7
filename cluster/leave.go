package cluster

import (
	"context"
	"time"
)

// AwaitPeersSeeLeave waits, after Leave, until every other live agent has
// heartbeated twice — a heartbeat registers and then re-reads the
// membership, so once a peer registered a second time, the re-read that
// followed its first registration (after we left) is done: the peer no
// longer places partitions or coordinators on this agent and stops sending
// clients here. A leaving agent keeps serving meanwhile, so
// clients routed by a peer's older view still find it (and get
// NOT_COORDINATOR for what it no longer coordinates) instead of a refused
// connection. It gives up when ctx ends or after two heartbeats, by which
// time a live peer that is not starved has heartbeated twice. It reports
// whether every peer was seen to notice.
func (m *Membership) AwaitPeersSeeLeave(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*m.cfg.Heartbeat+m.cfg.Heartbeat/2)
	defer cancel()
	before, err := m.store.Agents(ctx)
	if err != nil {
		return false
	}
	type peer struct {
		expires time.Time // its lease expiry when last seen
		renewed int       // registrations seen since we left
	}
	waiting := make(map[string]*peer)
	for _, a := range before {
		if a.ID != m.cfg.AgentID {
			waiting[a.ID] = &peer{expires: a.Expires}
		}
	}
	poll := time.NewTicker(max(m.cfg.Heartbeat/10, time.Millisecond))
	defer poll.Stop()
	for len(waiting) > 0 {
		select {
		case <-ctx.Done():
			m.log.Warn("left the cluster; not every peer was seen to notice", "waiting_for", len(waiting))
			return false
		case <-poll.C:
		}
		now, err := m.store.Agents(ctx)
		if err != nil {
			continue
		}
		live := make(map[string]time.Time, len(now))
		for _, a := range now {
			live[a.ID] = a.Expires
		}
		for id, p := range waiting {
			cur, ok := live[id]
			switch {
			case !ok:
				delete(waiting, id) // gone itself
			case cur.After(p.expires):
				p.expires = cur
				if p.renewed++; p.renewed == 2 {
					delete(waiting, id)
				}
			}
		}
	}
	return true
}
