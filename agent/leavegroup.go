package agent

// LeaveGroup, versions 0–5: one member (v0–2) or a batch identified by
// member id and/or group.instance.id (v3+), answered by the group
// coordinator (package group).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleLeaveGroup(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	return wire.Respond(a.groups.LeaveGroup(ctx, kreq.(*kmsg.LeaveGroupRequest)))
}
