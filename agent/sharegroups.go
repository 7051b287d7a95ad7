package agent

// Share groups (KIP-932), answered by the group coordinator (package
// group). The APIs are advertised only while
// group.coordinator.rebalance.protocols lists share; otherwise they are
// still answered, with UNSUPPORTED_VERSION, rather than by closing the
// connection.
//
// ShareGroupHeartbeat, version 1: READ on the group is required
// (GROUP_AUTHORIZATION_FAILED). ShareGroupDescribe, version 1: each group
// DESCRIBE-authorized on its own. ShareFetch and ShareAcknowledge:
// sharefetch.go, shareacknowledge.go. The offset admin APIs
// (DescribeShareGroupOffsets v0–1, AlterShareGroupOffsets and
// DeleteShareGroupOffsets v0): at the end of this file.

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
	case *kmsg.DescribeShareGroupOffsetsRequest:
		resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
		for _, g := range req.Groups {
			dg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
			dg.GroupID, dg.ErrorCode = g.GroupID, code
			resp.Groups = append(resp.Groups, dg)
		}
		return wire.Respond(resp)
	case *kmsg.AlterShareGroupOffsetsRequest:
		resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
		resp.ErrorCode = code
		return wire.Respond(resp)
	case *kmsg.DeleteShareGroupOffsetsRequest:
		resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
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

// groupTopic resolves one topic for the group coordinator.
func (a *Agent) groupTopic(ctx context.Context, name string) (group.TopicInfo, error) {
	t, err := a.topic(ctx, name)
	if err != nil {
		return group.TopicInfo{}, err
	}
	return group.TopicInfo{Name: t.Name, ID: t.ID, Partitions: len(t.Partitions)}, nil
}

// highWatermark is a partition's high watermark as this agent knows it.
func (a *Agent) highWatermark(ctx context.Context, id metastore.TopicID, part int32) (int64, error) {
	t, err := a.topicByID(ctx, id)
	if err != nil {
		return 0, err
	}
	if part < 0 || int(part) >= len(t.Partitions) {
		return 0, metastore.ErrUnknownTopic
	}
	p := t.Partitions[part]
	if err := a.topics.Load(ctx, p); err != nil {
		return 0, err
	}
	hw, _ := p.Offsets()
	return hw, nil
}

// releaseShareRecords returns a share group member's records to its
// group (the member left the group).
func (a *Agent) releaseShareRecords(ctx context.Context, group, member string) {
	a.releaseShareMember(ctx, shareSessionKey{group: group, member: member}, a.shareSettingsOf(ctx, group))
}

// The share group offset admin APIs, answered by the group coordinator:
// DescribeShareGroupOffsets (DESCRIBE on the group), AlterShareGroupOffsets
// (READ) and DeleteShareGroupOffsets (DELETE), GROUP_AUTHORIZATION_FAILED
// otherwise. Topic ACLs are not checked for them.

func (a *Agent) handleDescribeShareGroupOffsets(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DescribeShareGroupOffsetsRequest)
	az := a.access(c)
	allowed := *req
	allowed.Groups = nil
	denied := map[int]bool{}
	for i, g := range req.Groups {
		if az.group(metastore.OpDescribe, g.GroupID) {
			allowed.Groups = append(allowed.Groups, g)
		} else {
			denied[i] = true
		}
	}
	described := a.groups.DescribeShareGroupOffsets(ctx, &allowed)
	resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
	j := 0
	for i, g := range req.Groups {
		if denied[i] {
			dg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
			dg.GroupID, dg.ErrorCode = g.GroupID, kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		resp.Groups = append(resp.Groups, described.Groups[j])
		j++
	}
	return wire.Respond(resp)
}

func (a *Agent) handleAlterShareGroupOffsets(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.AlterShareGroupOffsetsRequest)
	if !a.access(c).group(metastore.OpRead, req.GroupID) {
		resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return wire.Respond(resp)
	}
	return wire.Respond(a.groups.AlterShareGroupOffsets(ctx, req))
}

func (a *Agent) handleDeleteShareGroupOffsets(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DeleteShareGroupOffsetsRequest)
	if !a.access(c).group(metastore.OpDelete, req.GroupID) {
		resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return wire.Respond(resp)
	}
	return wire.Respond(a.groups.DeleteShareGroupOffsets(ctx, req))
}
