package agent

// Heartbeat, versions 0–4: answered by the group coordinator
// (package group).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleHeartbeat(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	return wire.Respond(a.groups.Heartbeat(ctx, kreq.(*kmsg.HeartbeatRequest)))
}
