package group

// DescribeGroups versions 0–5, ListGroups versions 0–5 (state filter v4+,
// type filter v5+: "classic", "consumer" or "share") and DeleteGroups versions
// 0–2, for every group type; a consumer or share group described with
// DescribeGroups is Dead, as Kafka answers (ConsumerGroupDescribe and
// ShareGroupDescribe describe them). ListGroups lists the
// groups this process coordinates, so a client that asks every process
// sees each group once. A group with committed offsets and nothing else
// (committed from outside group management) is Empty in both, as in
// Kafka; Dead is for a group that does not exist.

import (
	"context"
	"errors"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
)

// DescribeGroups describes the groups the request names.
func (c *Coordinator) DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		dg.AuthorizedOperations = -2147483648 // not requested / not computed
		g, code := c.acquire(ctx, id)
		if code != 0 {
			dg.ErrorCode = code
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		g.mu.Lock()
		offsetsOnly := false
		switch {
		case g.unloaded:
			dg.ErrorCode = kerr.NotCoordinator.Code
		case g.consumer != nil || g.share != nil:
			// As Kafka answers for a group of another type: Dead before
			// v6 (which has no error message to say why).
			dg.State = stateDead.String()
			if req.Version >= 6 {
				dg.ErrorCode = kerr.GroupIDNotFound.Code
				msg := "Group " + id + " is not a classic group."
				dg.ErrorMessage = &msg
			}
		case !g.exists():
			dg.State = stateDead.String()
			offsetsOnly = true
		default:
			dg.State = g.state.String()
			dg.ProtocolType = g.protocolType
			if g.state == stateStable || g.state == stateCompletingRebalance {
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
				if g.state == stateStable {
					dm.MemberAssignment = m.assignment
				}
				dg.Members = append(dg.Members, dm)
			}
		}
		g.mu.Unlock()
		if offsetsOnly {
			dg.State, dg.ErrorCode = c.offsetsOnlyState(ctx, id)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// offsetsOnlyState is the state of a group that has neither members nor a
// saved generation: Empty if it has committed offsets (committed from
// outside group management), as Kafka describes such a group and as
// ListGroups lists it, else Dead (no such group).
func (c *Coordinator) offsetsOnlyState(ctx context.Context, id string) (string, int16) {
	fctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	committed, err := c.store.FetchOffsets(fctx, id)
	switch {
	case err != nil:
		c.log.Warn("describe group: fetch offsets", "group", id, "err", err)
		return "", kerr.CoordinatorNotAvailable.Code
	case len(committed) > 0:
		return stateEmpty.String(), 0
	default:
		return stateDead.String(), 0
	}
}

// ListGroups lists the groups this process coordinates: those in the
// store, and those in their first rebalance, not stored yet.
func (c *Coordinator) ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	lctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	stored, err := c.store.Groups(lctx)
	if err != nil {
		c.log.Warn("list groups failed", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	seen := make(map[string]bool)
	add := func(s metastore.GroupSummary) {
		if seen[s.ID] || !c.isCoordinator(s.ID) {
			return
		}
		seen[s.ID] = true
		if s.Type == "" {
			s.Type = metastore.GroupTypeClassic
		}
		if g := c.loaded(s.ID); g != nil {
			g.mu.Lock()
			switch {
			case g.unloaded || !g.exists():
			case g.consumer != nil:
				s.ProtocolType, s.State, s.Type = "consumer", g.consumer.stateName(g.generation), metastore.GroupTypeConsumer
			case g.share != nil:
				s.ProtocolType, s.State, s.Type = "share", g.share.stateName(), metastore.GroupTypeShare
			default:
				s.ProtocolType, s.State, s.Type = g.protocolType, g.state.String(), metastore.GroupTypeClassic
			}
			g.mu.Unlock()
		}
		if len(req.StatesFilter) > 0 && !containsFold(req.StatesFilter, s.State) {
			return
		}
		if len(req.TypesFilter) > 0 && !containsFold(req.TypesFilter, s.Type) {
			return
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = s.ID, s.ProtocolType, s.State, s.Type
		resp.Groups = append(resp.Groups, lg)
	}
	for _, s := range stored {
		add(s)
	}
	// Groups in their first rebalance are not stored yet.
	for _, g := range c.snapshot() {
		g.mu.Lock()
		ok := !g.unloaded && g.exists()
		g.mu.Unlock()
		if ok {
			add(metastore.GroupSummary{ID: g.id})
		}
	}
	return resp
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// DeleteGroups deletes empty groups and their offsets.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		rg.ErrorCode = c.deleteGroup(ctx, id)
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

func (c *Coordinator) deleteGroup(ctx context.Context, id string) int16 {
	if id == "" {
		return kerr.InvalidGroupID.Code
	}
	g, code := c.acquire(ctx, id)
	if code != 0 {
		return code
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.unloaded:
		return kerr.NotCoordinator.Code
	case len(g.members) > 0 || len(g.pending) > 0 || (g.state != stateEmpty && g.state != stateDead):
		return kerr.NonEmptyGroup.Code
	case g.consumer != nil && len(g.consumer.members) > 0:
		return kerr.NonEmptyGroup.Code
	case g.share != nil && len(g.share.members) > 0:
		return kerr.NonEmptyGroup.Code
	}
	dctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if g.share != nil {
		// The share group's record states go first: a later group of the
		// same name must not inherit them. If the group's own deletion
		// then fails, it stays, empty, and starts its partitions afresh.
		if err := c.store.DeleteSharePartitions(dctx, id, nil); err != nil {
			c.log.Warn("delete share group: forget its share partitions", "group", id, "err", err)
			return kerr.CoordinatorNotAvailable.Code
		}
	}
	err := c.store.DeleteGroup(dctx, id)
	switch {
	case errors.Is(err, metastore.ErrGroupNotFound):
		return kerr.GroupIDNotFound.Code
	case errors.Is(err, metastore.ErrGroupNotEmpty):
		return kerr.NonEmptyGroup.Code
	case err != nil:
		c.log.Warn("delete group failed", "group", id, "err", err)
		return kerr.CoordinatorNotAvailable.Code
	}
	g.state = stateDead
	g.unloadLocked()
	return 0
}
