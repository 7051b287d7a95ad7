package agent

// LeaveGroup, versions 0–5: one member (v0–2) or a batch identified by
// member id and/or group.instance.id (v3+), answered by the group
// coordinator (package group).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleLeaveGroup(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	if req := kreq.(*kmsg.LeaveGroupRequest); !a.access(c).group(metastore.OpRead, req.Group) {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return wire.Respond(resp)
	}
	return wire.Respond(a.groups.LeaveGroup(ctx, kreq.(*kmsg.LeaveGroupRequest)))
}
