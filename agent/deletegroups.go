package agent

// DeleteGroups, versions 0–2: answered by the group coordinator
// (package group).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleDeleteGroups(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	return wire.Respond(authorizeDeleteGroups(a.access(c), kreq.(*kmsg.DeleteGroupsRequest), func(req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
		return a.groups.DeleteGroups(ctx, req)
	}))
}
