package agent

// ConsumerGroupHeartbeat, versions 0–1 (KIP-848): answered by the group
// coordinator (package group). Registered only while
// group.coordinator.rebalance.protocols lists consumer. READ on the group
// is required (GROUP_AUTHORIZATION_FAILED).

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/group"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleConsumerGroupHeartbeat(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	if !a.access(c).group(metastore.OpRead, req.Group) {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return wire.Respond(resp)
	}
	var client group.Client
	if c != nil {
		if h, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
			client.Host = "/" + h
		}
		client.ID = c.ClientID()
	}
	return wire.Respond(a.groups.ConsumerGroupHeartbeat(ctx, req, client))
}
