package group

// JoinGroup, versions 0–9. v4+ new dynamic members are first answered
// MEMBER_ID_REQUIRED with their id (KIP-394); static members
// (group.instance.id, v5+) that rejoin with an empty member id replace
// their old incarnation, without a rebalance when the group is stable and
// their protocols still select the same assignor. The request is parked
// until the join phase ends. For one session timeout after this process
// loaded the group, a member id it does not know is taken in as a new
// member rather than answered UNKNOWN_MEMBER_ID: the previous coordinator
// may have handed it out. A JoinGroup to a consumer group with members
// joins it as a member speaking the classic protocol (migration.go).

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
)

// Client is who sent a request: Kafka's client.id and the client's host
// as DescribeGroups shows it ("/10.0.0.7").
type Client struct {
	ID   string
	Host string
}

// JoinGroup answers a JoinGroup request now (resp) or, when the request is
// parked until the join phase ends, later on parked, which delivers exactly
// one response. Exactly one of resp and parked is non-nil. Parked requests
// are answered NOT_COORDINATOR when the group is unloaded or the
// Coordinator closes, so nobody waits on parked forever.
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest, client Client) (resp *kmsg.JoinGroupResponse, parked <-chan kmsg.Response) {
	fail := func(code int16) (*kmsg.JoinGroupResponse, <-chan kmsg.Response) {
		return joinError(req, req.MemberID, code), nil
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if session < c.minSession || session > c.maxSession {
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
	g, code := c.acquire(ctx, req.Group)
	if code != 0 {
		return fail(code)
	}
	topics, code := c.consumerTopics(ctx, g)
	if code != 0 {
		return fail(code)
	}
	clientID, host := client.ID, client.Host
	w := &joinWaiter{req: req, ch: make(chan kmsg.Response, 1)}

	g.mu.Lock()
	defer g.mu.Unlock()
	if g.unloaded {
		return fail(kerr.NotCoordinator.Code)
	}
	if g.share != nil {
		// A share group never turns into another type (Kafka: the group
		// id is taken until the share group is deleted).
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	if g.consumer != nil {
		if len(g.consumer.members) > 0 {
			// A consumer group with members takes classic members
			// (migration.go).
			if topics == nil && c.topics != nil {
				return fail(kerr.CoordinatorNotAvailable.Code) // it became one since topics were read
			}
			return g.joinConsumerLocked(req, protos, session, rebalance, client, topics), nil
		}
		g.consumer = nil // an empty consumer group becomes a classic group
	}
	if !g.supportsLocked(req.ProtocolType, protos, req.MemberID) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	update := func(m *member) {
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
			return joinError(req, id, kerr.MemberIDRequired.Code), nil
		}
		m := &member{id: id, instanceID: instance}
		update(m)
		g.addMemberLocked(m, req.ProtocolType, w)
		return nil, w.ch
	}

	if t, ok := g.pending[req.MemberID]; ok {
		t.Stop()
		delete(g.pending, req.MemberID)
		m := &member{id: req.MemberID, instanceID: instance}
		update(m)
		g.addMemberLocked(m, req.ProtocolType, w)
		return nil, w.ch
	}
	if instance != "" {
		if cur, ok := g.statics[instance]; ok && cur != req.MemberID {
			return fail(g.confirmLocked(kerr.FencedInstanceID.Code))
		}
	}
	m, ok := g.members[req.MemberID]
	if !ok && time.Since(g.loadedAt) < session {
		// The agent that coordinated the group before this one may have
		// handed out the id (MEMBER_ID_REQUIRED; pending ids are not
		// saved) for as long as the member's session: take the member in.
		m := &member{id: req.MemberID, instanceID: instance}
		update(m)
		g.addMemberLocked(m, req.ProtocolType, w)
		return nil, w.ch
	}
	if !ok {
		return fail(g.confirmLocked(kerr.UnknownMemberID.Code))
	}
	if m.join != nil {
		// A retried join replaces the parked one, which is answered as
		// superseded; the client only waits on the newest.
		m.join.ch <- joinError(m.join.req, m.id, kerr.RebalanceInProgress.Code)
		m.join = nil
	}
	switch g.state {
	case statePreparingRebalance:
		update(m)
		m.join = w
		g.maybeCompleteJoinLocked()
	case stateCompletingRebalance:
		if sameProtocols(m.protocols, protos) {
			// The join response was lost: answer it again.
			g.heartbeatLocked(m)
			return g.joinResponseLocked(m, req), nil
		}
		update(m)
		m.join = w
		g.prepareRebalanceLocked()
	case stateStable:
		if m.id != g.leader && sameProtocols(m.protocols, protos) {
			g.heartbeatLocked(m)
			return g.joinResponseLocked(m, req), nil
		}
		update(m)
		m.join = w
		g.prepareRebalanceLocked()
	default:
		return fail(kerr.UnknownMemberID.Code)
	}
	return nil, w.ch
}

// addMemberLocked adds a member that is joining now and starts (or
// continues) a rebalance.
func (g *group) addMemberLocked(m *member, protocolType string, w *joinWaiter) {
	if len(g.members) == 0 {
		g.protocolType = protocolType
	}
	m.join = w
	g.members[m.id] = m
	if m.instanceID != "" {
		g.statics[m.instanceID] = m.id
	}
	g.heartbeatLocked(m)
	if g.state == statePreparingRebalance {
		g.maybeCompleteJoinLocked()
		return
	}
	g.prepareRebalanceLocked()
}

// replaceStaticLocked gives a rejoining static member a new member id,
// fencing the old one. A stable group whose protocol choice stays the same
// keeps its generation and assignments: no rebalance.
func (g *group) replaceStaticLocked(old *member, newID string, w *joinWaiter, update func(*member)) (*kmsg.JoinGroupResponse, <-chan kmsg.Response) {
	g.failWaitersLocked(old, kerr.FencedInstanceID.Code)
	if old.timer != nil {
		old.timer.Stop()
	}
	m := &member{id: newID, instanceID: old.instanceID, assignment: old.assignment}
	update(m)
	delete(g.members, old.id)
	g.members[newID] = m
	g.statics[m.instanceID] = newID
	if g.leader == old.id {
		g.leader = newID
	}
	g.heartbeatLocked(m)
	g.c.log.Info("static member rejoined", "group", g.id, "instance", m.instanceID, "member", newID)
	switch g.state {
	case stateStable:
		if g.selectProtocolLocked() == g.protocol {
			if !g.saveLocked() {
				return joinError(w.req, "", kerr.NotCoordinator.Code), nil
			}
			return g.joinResponseLocked(m, w.req), nil
		}
		m.join = w
		g.prepareRebalanceLocked()
	case statePreparingRebalance:
		m.join = w
		g.maybeCompleteJoinLocked()
	default:
		m.join = w
		g.prepareRebalanceLocked()
	}
	return nil, w.ch
}
