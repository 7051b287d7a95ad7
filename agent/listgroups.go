package agent

// ListGroups, versions 0–5: state filter v4+, type filter v5+; lists
// the groups this agent coordinates (package group).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleListGroups(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	return wire.Respond(authorizeListGroups(a.access(c), a.groups.ListGroups(ctx, kreq.(*kmsg.ListGroupsRequest))))
}
