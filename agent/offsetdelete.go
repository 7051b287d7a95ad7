package agent

// OffsetDelete, version 0: answered by the group coordinator
// (package group).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleOffsetDelete(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	return wire.Respond(authorizeOffsetDelete(a.access(c), kreq.(*kmsg.OffsetDeleteRequest), func(req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
		return a.groups.OffsetDelete(ctx, req)
	}))
}
