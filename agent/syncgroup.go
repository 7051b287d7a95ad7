package agent

// SyncGroup, versions 0–5: the group coordinator (package group) answers,
// or parks a member's request until the leader's assignment is saved.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleSyncGroup(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	if req := kreq.(*kmsg.SyncGroupRequest); !a.access(c).group(metastore.OpRead, req.Group) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return wire.Respond(resp)
	}
	resp, parked := a.groups.SyncGroup(ctx, kreq.(*kmsg.SyncGroupRequest))
	return groupReply(resp, parked)
}
