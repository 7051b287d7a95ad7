package agent

// DescribeGroups, versions 0–5: answered by the group coordinator
// (package group).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleDescribeGroups(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	return wire.Respond(authorizeDescribeGroups(a.access(c), kreq.(*kmsg.DescribeGroupsRequest), func(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
		return a.groups.DescribeGroups(ctx, req)
	}))
}
