package group

// SyncGroup, versions 0–5, and Heartbeat, versions 0–4. The leader's
// SyncGroup carries the assignments; the group is saved (compare-and-set on
// generation) before any member gets its assignment, so an assignment a
// client holds is always one the store knows. Followers' SyncGroups are
// parked until then. In a consumer group, a member speaking the classic
// protocol is answered at once from the group's reconciliation
// (migration.go).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// checkMemberLocked validates a member's identity and generation the way
// SyncGroup, Heartbeat and OffsetCommit do. It returns the member or a
// Kafka error code.
func (g *group) checkMemberLocked(memberID string, instanceID *string, generation int32) (*member, int16) {
	if g.unloaded {
		return nil, kerr.NotCoordinator.Code
	}
	if instanceID != nil && *instanceID != "" {
		if cur, ok := g.statics[*instanceID]; ok && cur != memberID {
			return nil, kerr.FencedInstanceID.Code
		}
	}
	m, ok := g.members[memberID]
	if !ok {
		return nil, kerr.UnknownMemberID.Code
	}
	if generation != g.generation {
		return nil, kerr.IllegalGeneration.Code
	}
	return m, 0
}

// SyncGroup answers a SyncGroup request now (resp) or, for a member of a
// group completing its rebalance, later on parked, which delivers exactly
// one response once the leader's assignment is saved. Exactly one of resp
// and parked is non-nil; parked requests are answered NOT_COORDINATOR when
// the group is unloaded.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) (resp *kmsg.SyncGroupResponse, parked <-chan kmsg.Response) {
	fail := func(code int16) (*kmsg.SyncGroupResponse, <-chan kmsg.Response) { return syncError(req, code), nil }
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	g, code := c.acquire(ctx, req.Group)
	if code != 0 {
		return fail(code)
	}
	topics, code := c.consumerTopics(ctx, g)
	if code != 0 {
		return fail(code)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.unloaded && g.consumer != nil {
		if topics == nil && c.topics != nil {
			return fail(kerr.CoordinatorNotAvailable.Code) // it became one since topics were read
		}
		return g.syncConsumerLocked(req, topics), nil
	}
	m, code := g.checkMemberLocked(req.MemberID, req.InstanceID, req.Generation)
	if code != 0 {
		return fail(g.confirmLocked(code))
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	switch g.state {
	case statePreparingRebalance:
		return fail(kerr.RebalanceInProgress.Code)
	case stateStable:
		g.heartbeatLocked(m)
		return g.syncResponseLocked(m, req), nil
	case stateCompletingRebalance:
	default:
		return fail(kerr.UnknownMemberID.Code)
	}
	if m.sync != nil {
		m.sync.ch <- syncError(m.sync.req, kerr.RebalanceInProgress.Code)
	}
	w := &syncWaiter{req: req, ch: make(chan kmsg.Response, 1)}
	m.sync = w
	if m.id != g.leader {
		return nil, w.ch
	}
	plan := make(map[string][]byte, len(req.GroupAssignment))
	for _, as := range req.GroupAssignment {
		plan[as.MemberID] = as.MemberAssignment
	}
	for id, o := range g.members {
		o.assignment = plan[id]
		if o.assignment == nil {
			o.assignment = []byte{}
		}
	}
	g.state = stateStable
	if !g.saveLocked() {
		return nil, w.ch // unloading answered it NOT_COORDINATOR
	}
	for _, o := range g.members {
		if o.sync != nil {
			o.sync.ch <- g.syncResponseLocked(o, o.sync.req)
			o.sync = nil
			g.heartbeatLocked(o)
		}
	}
	return nil, w.ch
}

func (g *group) syncResponseLocked(m *member, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ProtocolType = &g.protocolType
	resp.Protocol = &g.protocol
	resp.MemberAssignment = m.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

// Heartbeat extends a member's session, and tells it to rejoin while the
// group rebalances.
func (c *Coordinator) Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	g, code := c.acquire(ctx, req.Group)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.unloaded && g.consumer != nil {
		resp.ErrorCode = g.heartbeatClassicLocked(req)
		return resp
	}
	m, code := g.checkMemberLocked(req.MemberID, req.InstanceID, req.Generation)
	if code != 0 {
		resp.ErrorCode = g.confirmLocked(code)
		return resp
	}
	g.heartbeatLocked(m)
	if g.state == statePreparingRebalance {
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	}
	return resp
}
