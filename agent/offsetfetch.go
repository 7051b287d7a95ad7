package agent

// OffsetFetch, versions 0–9: one group, or several per request from
// v8; answered by the group coordinator (package group).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleOffsetFetch(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	return wire.Respond(a.groups.OffsetFetch(ctx, kreq.(*kmsg.OffsetFetchRequest)))
}
