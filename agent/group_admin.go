package agent

// FindCoordinator versions 0–6 (batched keys from v4), DescribeGroups
// versions 0–5, ListGroups versions 0–5 (state filter v4+, type filter v5+)
// and DeleteGroups versions 0–2.
//
// Group coordinators are placed by coordinatorFor; transaction
// coordinators are not implemented yet, so key type 1 answers
// COORDINATOR_NOT_AVAILABLE. ListGroups lists the groups this agent
// coordinates, so a client that asks every agent sees each group once.

import (
	"context"
	"errors"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/cluster"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleFindCoordinator(_ context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	find := func(key string) (b cluster.Broker, code int16, msg string) {
		switch req.CoordinatorType {
		case 0:
			if key == "" {
				return b, kerr.InvalidGroupID.Code, "group id must not be empty"
			}
			return a.coordinatorFor(key), 0, ""
		case 1:
			if key == "" {
				return b, kerr.InvalidRequest.Code, "transactional id must not be empty"
			}
			return a.coordinatorFor(key), 0, ""
		default:
			return b, kerr.InvalidRequest.Code, "unknown coordinator type"
		}
	}
	if req.Version < 4 {
		b, code, msg := find(req.CoordinatorKey)
		resp.ErrorCode, resp.NodeID, resp.Host, resp.Port = code, -1, "", -1
		if code == 0 {
			resp.NodeID, resp.Host, resp.Port = b.NodeID, b.Host, b.Port
		} else if req.Version >= 1 {
			resp.ErrorMessage = &msg
		}
		return wire.Respond(resp)
	}
	for _, key := range req.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Port = key, -1, -1
		b, code, msg := find(key)
		c.ErrorCode = code
		if code == 0 {
			c.NodeID, c.Host, c.Port = b.NodeID, b.Host, b.Port
		} else {
			c.ErrorMessage = &msg
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return wire.Respond(resp)
}

func (a *Agent) handleDescribeGroups(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		dg.AuthorizedOperations = -2147483648 // not requested / not computed
		g, code := a.groups.acquire(ctx, id)
		if code != 0 {
			dg.ErrorCode = code
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		g.mu.Lock()
		switch {
		case g.unloaded:
			dg.ErrorCode = kerr.NotCoordinator.Code
		case !g.exists():
			dg.State = groupDead.String()
		default:
			dg.State = g.state.String()
			dg.ProtocolType = g.protocolType
			if g.state == groupStable || g.state == groupCompletingRebalance {
				dg.Protocol = g.protocol
			}
			for _, mid := range g.memberIDsLocked() {
				m := g.members[mid]
				dm := kmsg.NewDescribeGroupsResponseGroupMember()
				dm.MemberID, dm.ClientID, dm.ClientHost = m.id, m.clientID, m.clientHost
				if m.instanceID != "" {
					dm.InstanceID = &m.instanceID
				}
				if dg.Protocol != "" {
					dm.ProtocolMetadata = m.metadataFor(g.protocol)
				}
				if g.state == groupStable {
					dm.MemberAssignment = m.assignment
				}
				dg.Members = append(dg.Members, dm)
			}
		}
		g.mu.Unlock()
		resp.Groups = append(resp.Groups, dg)
	}
	return wire.Respond(resp)
}

func (a *Agent) handleListGroups(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	if len(req.TypesFilter) > 0 && !containsFold(req.TypesFilter, "classic") {
		return wire.Respond(resp)
	}
	lctx, cancel := context.WithTimeout(ctx, groupStoreTimeout)
	defer cancel()
	stored, err := a.store.Groups(lctx)
	if err != nil {
		a.log.Warn("list groups failed", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return wire.Respond(resp)
	}
	seen := make(map[string]bool)
	add := func(s metastore.GroupSummary) {
		if seen[s.ID] || !a.isCoordinator(s.ID) {
			return
		}
		seen[s.ID] = true
		if g := a.groups.loaded(s.ID); g != nil {
			g.mu.Lock()
			if !g.unloaded && g.exists() {
				s.ProtocolType, s.State = g.protocolType, g.state.String()
			}
			g.mu.Unlock()
		}
		if len(req.StatesFilter) > 0 && !containsFold(req.StatesFilter, s.State) {
			return
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = s.ID, s.ProtocolType, s.State, "classic"
		resp.Groups = append(resp.Groups, lg)
	}
	for _, s := range stored {
		add(s)
	}
	// Groups in their first rebalance are not stored yet.
	a.groups.mu.Lock()
	var fresh []*group
	for _, g := range a.groups.groups {
		fresh = append(fresh, g)
	}
	a.groups.mu.Unlock()
	for _, g := range fresh {
		g.mu.Lock()
		ok := !g.unloaded && g.exists()
		g.mu.Unlock()
		if ok {
			add(metastore.GroupSummary{ID: g.id})
		}
	}
	return wire.Respond(resp)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func (a *Agent) handleDeleteGroups(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		rg.ErrorCode = a.deleteGroup(ctx, id)
		resp.Groups = append(resp.Groups, rg)
	}
	return wire.Respond(resp)
}

func (a *Agent) deleteGroup(ctx context.Context, id string) int16 {
	if id == "" {
		return kerr.InvalidGroupID.Code
	}
	g, code := a.groups.acquire(ctx, id)
	if code != 0 {
		return code
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.unloaded:
		return kerr.NotCoordinator.Code
	case len(g.members) > 0 || len(g.pending) > 0 || (g.state != groupEmpty && g.state != groupDead):
		return kerr.NonEmptyGroup.Code
	}
	dctx, cancel := context.WithTimeout(ctx, groupStoreTimeout)
	defer cancel()
	err := a.store.DeleteGroup(dctx, id)
	switch {
	case errors.Is(err, metastore.ErrGroupNotFound):
		return kerr.GroupIDNotFound.Code
	case errors.Is(err, metastore.ErrGroupNotEmpty):
		return kerr.NonEmptyGroup.Code
	case err != nil:
		a.log.Warn("delete group failed", "group", id, "err", err)
		return kerr.CoordinatorNotAvailable.Code
	}
	g.state = groupDead
	g.unloadLocked()
	return 0
}
