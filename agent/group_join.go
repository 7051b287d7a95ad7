package agent

// JoinGroup, versions 0–9. v4+ new dynamic members are first answered
// MEMBER_ID_REQUIRED with their id (KIP-394); static members
// (group.instance.id, v5+) that rejoin with an empty member id replace
// their old incarnation, without a rebalance when the group is stable and
// their protocols still select the same assignor. The request is parked
// (a deferred reply) until the join phase ends.

import (
	"context"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleJoinGroup(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.JoinGroupRequest)
	fail := func(code int16) wire.Reply { return wire.Respond(joinError(req, req.MemberID, code)) }
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if session < minSessionTimeout || session > maxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout.Code)
	}
	rebalance := session
	if req.Version >= 1 && req.RebalanceTimeoutMillis > 0 {
		rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	protos := make([]metastore.GroupProtocol, 0, len(req.Protocols))
	for _, p := range req.Protocols {
		protos = append(protos, metastore.GroupProtocol{Name: p.Name, Metadata: p.Metadata})
	}
	instance := ""
	if req.InstanceID != nil {
		instance = *req.InstanceID
	}
	g, code := a.groups.acquire(ctx, req.Group)
	if code != 0 {
		return fail(code)
	}
	host := ""
	if c != nil {
		if h, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
			host = "/" + h
		}
	}
	clientID := c.ClientID()
	w := &joinWaiter{req: req, ch: make(chan kmsg.Response, 1)}

	g.mu.Lock()
	defer g.mu.Unlock()
	if g.unloaded {
		return fail(kerr.NotCoordinator.Code)
	}
	if !g.supportsLocked(req.ProtocolType, protos, req.MemberID) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	update := func(m *groupMember) {
		m.protocols, m.session, m.rebalance = protos, session, rebalance
		m.clientID, m.clientHost = clientID, host
	}

	if req.MemberID == "" {
		id := newMemberID(clientID)
		if instance != "" {
			if oldID, ok := g.statics[instance]; ok {
				return g.replaceStaticLocked(g.members[oldID], id, w, update)
			}
		} else if req.Version >= 4 {
			g.addPendingLocked(id, session)
			resp := joinError(req, id, kerr.MemberIDRequired.Code)
			return wire.Respond(resp)
		}
		m := &groupMember{id: id, instanceID: instance}
		update(m)
		g.addMemberLocked(m, req.ProtocolType, w)
		return awaitResponse(w.ch)
	}

	if t, ok := g.pending[req.MemberID]; ok {
		t.Stop()
		delete(g.pending, req.MemberID)
		m := &groupMember{id: req.MemberID, instanceID: instance}
		update(m)
		g.addMemberLocked(m, req.ProtocolType, w)
		return awaitResponse(w.ch)
	}
	if instance != "" {
		if cur, ok := g.statics[instance]; ok && cur != req.MemberID {
			return fail(kerr.FencedInstanceID.Code)
		}
	}
	m, ok := g.members[req.MemberID]
	if !ok {
		return fail(kerr.UnknownMemberID.Code)
	}
	if m.join != nil {
		// A retried join replaces the parked one, which is answered as
		// superseded; the client only waits on the newest.
		m.join.ch <- joinError(m.join.req, m.id, kerr.RebalanceInProgress.Code)
		m.join = nil
	}
	switch g.state {
	case groupPreparingRebalance:
		update(m)
		m.join = w
		g.maybeCompleteJoinLocked()
	case groupCompletingRebalance:
		if sameProtocols(m.protocols, protos) {
			// The join response was lost: answer it again.
			g.heartbeatLocked(m)
			return wire.Respond(g.joinResponseLocked(m, req))
		}
		update(m)
		m.join = w
		g.prepareRebalanceLocked()
	case groupStable:
		if m.id != g.leader && sameProtocols(m.protocols, protos) {
			g.heartbeatLocked(m)
			return wire.Respond(g.joinResponseLocked(m, req))
		}
		update(m)
		m.join = w
		g.prepareRebalanceLocked()
	default:
		return fail(kerr.UnknownMemberID.Code)
	}
	return awaitResponse(w.ch)
}

// addMemberLocked adds a member that is joining now and starts (or
// continues) a rebalance.
func (g *group) addMemberLocked(m *groupMember, protocolType string, w *joinWaiter) {
	if len(g.members) == 0 {
		g.protocolType = protocolType
	}
	m.join = w
	g.members[m.id] = m
	if m.instanceID != "" {
		g.statics[m.instanceID] = m.id
	}
	g.heartbeatLocked(m)
	if g.state == groupPreparingRebalance {
		g.maybeCompleteJoinLocked()
		return
	}
	g.prepareRebalanceLocked()
}

// replaceStaticLocked gives a rejoining static member a new member id,
// fencing the old one. A stable group whose protocol choice stays the same
// keeps its generation and assignments: no rebalance.
func (g *group) replaceStaticLocked(old *groupMember, newID string, w *joinWaiter, update func(*groupMember)) wire.Reply {
	g.failWaitersLocked(old, kerr.FencedInstanceID.Code)
	if old.timer != nil {
		old.timer.Stop()
	}
	m := &groupMember{id: newID, instanceID: old.instanceID, assignment: old.assignment}
	update(m)
	delete(g.members, old.id)
	g.members[newID] = m
	g.statics[m.instanceID] = newID
	if g.leader == old.id {
		g.leader = newID
	}
	g.heartbeatLocked(m)
	g.gc.log.Info("static member rejoined", "group", g.id, "instance", m.instanceID, "member", newID)
	switch g.state {
	case groupStable:
		if g.selectProtocolLocked() == g.protocol {
			if !g.saveLocked() {
				return wire.Respond(joinError(w.req, "", kerr.NotCoordinator.Code))
			}
			return wire.Respond(g.joinResponseLocked(m, w.req))
		}
		m.join = w
		g.prepareRebalanceLocked()
	case groupPreparingRebalance:
		m.join = w
		g.maybeCompleteJoinLocked()
	default:
		m.join = w
		g.prepareRebalanceLocked()
	}
	return awaitResponse(w.ch)
}
