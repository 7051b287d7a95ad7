package group

// LeaveGroup, versions 0–5: one member (v0–2) or a batch identified by
// member id and/or group.instance.id (v3+). Leaving rebalances the rest; the
// last member leaving empties the group. In a consumer group they are
// members speaking the classic protocol (migration.go).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup removes the members the request names.
func (c *Coordinator) LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	g, code := c.acquire(ctx, req.Group)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.unloaded {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	if g.consumer != nil {
		return g.leaveClassicLocked(req, resp)
	}
	if req.Version < 3 {
		resp.ErrorCode = g.confirmLocked(g.leaveLocked(req.MemberID, ""))
		return resp
	}
	for _, rm := range req.Members {
		instance := ""
		if rm.InstanceID != nil {
			instance = *rm.InstanceID
		}
		out := kmsg.NewLeaveGroupResponseMember()
		out.MemberID, out.InstanceID = rm.MemberID, rm.InstanceID
		out.ErrorCode = g.confirmLocked(g.leaveLocked(rm.MemberID, instance))
		resp.Members = append(resp.Members, out)
	}
	return resp
}

// leaveLocked removes one member, returning a Kafka error code.
func (g *group) leaveLocked(memberID, instance string) int16 {
	if g.unloaded {
		return kerr.NotCoordinator.Code
	}
	if instance != "" {
		cur, ok := g.statics[instance]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case memberID != "" && memberID != cur:
			return kerr.FencedInstanceID.Code
		}
		memberID = cur
	}
	if t, ok := g.pending[memberID]; ok {
		t.Stop()
		delete(g.pending, memberID)
		g.maybeCompleteJoinLocked()
		return 0
	}
	m, ok := g.members[memberID]
	if !ok {
		return kerr.UnknownMemberID.Code
	}
	g.c.log.Info("group member left", "group", g.id, "member", memberID)
	g.removeMemberLocked(m, kerr.UnknownMemberID.Code)
	return 0
}
