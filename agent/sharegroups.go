package agent

// Share groups (KIP-932), answered by the group coordinator (package
// group). The APIs are advertised only while
// group.coordinator.rebalance.protocols lists share; otherwise they are
// still answered, with UNSUPPORTED_VERSION, rather than by closing the
// connection.
//
// ShareGroupHeartbeat, version 1: READ on the group is required
// (GROUP_AUTHORIZATION_FAILED). ShareGroupDescribe, version 1: each group
// DESCRIBE-authorized on its own.

import (
	"context"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/group"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

// shareGroupsOff answers a share group API while share groups are off.
func shareGroupsOff(_ context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	code := kerr.UnsupportedVersion.Code
	switch req := kreq.(type) {
	case *kmsg.ShareGroupHeartbeatRequest:
		resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
		resp.ErrorCode = code
		return wire.Respond(resp)
	case *kmsg.ShareGroupDescribeRequest:
		resp := req.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
		for _, id := range req.GroupIDs {
			g := kmsg.NewShareGroupDescribeResponseGroup()
			g.GroupID, g.ErrorCode = id, code
			resp.Groups = append(resp.Groups, g)
		}
		return wire.Respond(resp)
	case *kmsg.ShareFetchRequest:
		resp := req.ResponseKind().(*kmsg.ShareFetchResponse)
		resp.ErrorCode = code
		return wire.Respond(resp)
	case *kmsg.ShareAcknowledgeRequest:
		resp := req.ResponseKind().(*kmsg.ShareAcknowledgeResponse)
		resp.ErrorCode = code
		return wire.Respond(resp)
	}
	return wire.CloseConn(fmt.Errorf("%s: share groups are off", kmsg.NameForKey(kreq.Key())))
}

// groupClient is the client a group request comes from, as Kafka names it.
func groupClient(c *wire.Conn) group.Client {
	var client group.Client
	if c != nil {
		if h, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
			client.Host = "/" + h
		}
		client.ID = c.ClientID()
	}
	return client
}

func (a *Agent) handleShareGroupHeartbeat(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.ShareGroupHeartbeatRequest)
	if !a.access(c).group(metastore.OpRead, req.GroupID) {
		resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return wire.Respond(resp)
	}
	return wire.Respond(a.groups.ShareGroupHeartbeat(ctx, req, groupClient(c)))
}

func (a *Agent) handleShareGroupDescribe(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.ShareGroupDescribeRequest)
	az := a.access(c)
	allowed := *req
	allowed.GroupIDs = nil
	denied := map[string]bool{}
	for _, g := range req.GroupIDs {
		if az.group(metastore.OpDescribe, g) {
			allowed.GroupIDs = append(allowed.GroupIDs, g)
		} else {
			denied[g] = true
		}
	}
	described := a.groups.ShareGroupDescribe(ctx, &allowed)
	resp := req.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
	i := 0
	for _, g := range req.GroupIDs {
		if denied[g] {
			dg := kmsg.NewShareGroupDescribeResponseGroup()
			dg.GroupID, dg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		resp.Groups = append(resp.Groups, described.Groups[i])
		i++
	}
	return wire.Respond(resp)
}
