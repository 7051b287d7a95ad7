package agent

// JoinGroup, versions 0–9: the group coordinator (package group) answers,
// or parks the request until the join phase ends. The client's id and host
// are recorded for DescribeGroups.

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/group"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleJoinGroup(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.JoinGroupRequest)
	if !a.access(c).group(metastore.OpRead, req.Group) {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation = kerr.GroupAuthorizationFailed.Code, -1
		return wire.Respond(resp)
	}
	var client group.Client
	if c != nil {
		if h, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
			client.Host = "/" + h
		}
	}
	client.ID = c.ClientID()
	resp, parked := a.groups.JoinGroup(ctx, req, client)
	return groupReply(resp, parked)
}
