package agent

// DeleteGroups, versions 0–2: answered by the group coordinator
// (package group).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleDeleteGroups(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	return wire.Respond(a.groups.DeleteGroups(ctx, kreq.(*kmsg.DeleteGroupsRequest)))
}
