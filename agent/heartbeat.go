package agent

// Heartbeat, versions 0–4: answered by the group coordinator
// (package group).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleHeartbeat(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	if req := kreq.(*kmsg.HeartbeatRequest); !a.access(c).group(metastore.OpRead, req.Group) {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return wire.Respond(resp)
	}
	return wire.Respond(a.groups.Heartbeat(ctx, kreq.(*kmsg.HeartbeatRequest)))
}
