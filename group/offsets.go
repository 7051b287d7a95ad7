package group

// OffsetCommit versions 0–9, OffsetFetch versions 0–9 (several groups per
// request from v8) and OffsetDelete version 0.
//
// A commit from a group member (generation >= 0) is checked against the
// coordinator's memory as Kafka does (REBALANCE_IN_PROGRESS,
// UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID), then again by
// the store in the same transaction as the write, so a coordinator that
// lost the group to another agent cannot commit for a generation that
// moved on. Commits from outside the group (generation -1, and v0) are only
// taken while the group has no members. Topics and partitions that do not
// exist get UNKNOWN_TOPIC_OR_PARTITION.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
)

// maxOffsetMetadata is Kafka's offset.metadata.max.bytes default.
const maxOffsetMetadata = 4096

// OffsetCommit commits a group's offsets, fenced by the group's generation.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	code := c.commitOffsets(ctx, req, resp)
	if code != 0 {
		// Every partition gets the group-level error.
		resp.Topics = resp.Topics[:0]
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
	}
	return resp
}

// commitOffsets fills resp's per-partition results and returns a code that
// applies to all partitions instead, or 0.
func (c *Coordinator) commitOffsets(ctx context.Context, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	generation := req.Generation
	if req.Version == 0 {
		generation = -1
	}
	g, code := c.acquire(ctx, req.Group)
	if code != 0 {
		return code
	}
	memberEpoch := generation
	g.mu.Lock()
	consumer := g.consumer != nil
	if g.share != nil {
		// A share group commits no offsets (its progress is the share
		// partitions' start offsets); Kafka answers GROUP_ID_NOT_FOUND.
		g.mu.Unlock()
		return kerr.GroupIDNotFound.Code
	}
	if consumer {
		// A consumer group fences by member epoch (the request's
		// generation field from v9); the store checks the member against
		// the group epoch the coordinator saved last.
		code = g.confirmLocked(g.checkConsumerCommitLocked(req.MemberID, memberEpoch, req.Version < 9, false))
		if code == 0 && generation >= 0 {
			generation = g.savedGen
		}
	} else {
		code = g.confirmLocked(g.checkCommitLocked(req.MemberID, req.InstanceID, generation))
	}
	g.mu.Unlock()
	if code != 0 {
		return code
	}

	var offsets []metastore.CommittedOffset
	type slot struct{ t, p int }
	var slots []slot
	for ti, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		nparts, terr := c.partitions(ctx, rt.Topic)
		for pi, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case terr != nil && errors.Is(terr, metastore.ErrUnknownTopic):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case terr != nil:
				sp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			case rp.Partition < 0 || int(rp.Partition) >= nparts:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > maxOffsetMetadata:
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				o := metastore.CommittedOffset{Topic: rt.Topic, Partition: rp.Partition, Offset: rp.Offset, LeaderEpoch: -1}
				if req.Version >= 6 {
					o.LeaderEpoch = rp.LeaderEpoch
				}
				if rp.Metadata != nil {
					o.Metadata = *rp.Metadata
				}
				offsets = append(offsets, o)
				slots = append(slots, slot{ti, pi})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(offsets) == 0 {
		return 0
	}
	cctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	g.mu.Lock()
	epoch := g.epoch
	g.mu.Unlock()
	err := c.store.CommitGroupOffsets(cctx, req.Group, epoch, generation, req.MemberID, offsets)
	// A consumer group's epoch moves whenever a member joins, leaves or
	// changes its subscription, without the committer's member epoch
	// moving: if this process saved a new group epoch since the check,
	// the commit is checked again and retried at the new one.
	recheck := int16(0)
	for try := 0; consumer && generation >= 0 && errors.Is(err, metastore.ErrStaleGeneration) && try < maxCommitRetries; try++ {
		g.mu.Lock()
		moved := !g.unloaded && g.consumer != nil && g.savedGen != generation
		if moved {
			if recheck = g.checkConsumerCommitLocked(req.MemberID, memberEpoch, req.Version < 9, false); recheck == 0 {
				generation = g.savedGen
			}
		}
		g.mu.Unlock()
		if !moved || recheck != 0 {
			break
		}
		err = c.store.CommitGroupOffsets(cctx, req.Group, epoch, generation, req.MemberID, offsets)
	}
	code = 0
	switch {
	case recheck != 0:
		code = recheck // the member's epoch moved on meanwhile
	case err == nil:
	case errors.Is(err, metastore.ErrStaleGeneration), errors.Is(err, metastore.ErrUnknownMember), errors.Is(err, metastore.ErrGroupNotEmpty):
		code = g.refusedByStore(generation, err)
	case errors.Is(err, metastore.ErrCoordinatorMoved):
		// Another agent loaded the group since this one did: whatever this
		// commit was, the member's retry belongs there.
		code = g.deposed(err)
	default:
		c.log.Warn("commit offsets failed", "group", req.Group, "err", err)
		code = kerr.CoordinatorNotAvailable.Code
	}
	if code != 0 {
		for _, s := range slots {
			resp.Topics[s.t].Partitions[s.p].ErrorCode = code
		}
	}
	return 0
}

// maxCommitRetries bounds how often a consumer group member's commit is
// retried because the group epoch moved on under it (see commitOffsets).
const maxCommitRetries = 5

// refusedByStore answers a commit the store refused after the group in
// memory accepted it. If this process moved the group to another
// generation meanwhile, the committer is behind: ILLEGAL_GENERATION.
// Otherwise the memory is behind the store (another agent coordinated
// the group): the group is unloaded and the committer told
// NOT_COORDINATOR, so its retry meets the group as stored.
func (g *group) refusedByStore(generation int32, err error) int16 {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.unloaded:
		return kerr.NotCoordinator.Code
	case generation >= 0 && g.generation != generation && g.consumer != nil:
		return kerr.StaleMemberEpoch.Code // the group epoch moved on: the member's retry may hold a new member epoch
	case generation >= 0 && g.generation != generation:
		return kerr.IllegalGeneration.Code
	}
	g.c.log.Warn("store refused a commit the group accepted", "group", g.id, "err", err)
	g.movedOnLocked()
	return kerr.NotCoordinator.Code
}

// deposed unloads a group another agent has claimed since this process
// loaded it, and tells the requester NOT_COORDINATOR.
func (g *group) deposed(err error) int16 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.unloaded {
		g.c.log.Info("another agent took the group over; unloading", "group", g.id, "err", err)
		g.unloadLocked()
	}
	return kerr.NotCoordinator.Code
}

// checkCommitLocked is Kafka's offset commit validation against the
// coordinator's view of the group.
func (g *group) checkCommitLocked(memberID string, instanceID *string, generation int32) int16 {
	if g.unloaded {
		return kerr.NotCoordinator.Code
	}
	switch {
	case generation >= 0 || memberID != "" || (instanceID != nil && *instanceID != ""):
		if !g.exists() && generation >= 0 {
			return kerr.IllegalGeneration.Code
		}
		if _, code := g.checkMemberLocked(memberID, instanceID, generation); code != 0 {
			return code
		}
	case len(g.members) > 0:
		// Offsets of a managed group are the members' to commit.
		return kerr.UnknownMemberID.Code
	}
	if g.state == stateCompletingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// OffsetFetch returns committed offsets: of one group (v0–7) or several
// (v8+), for the requested partitions or all of them.
func (c *Coordinator) OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group = rg.Group
			var topics []kmsg.OffsetFetchRequestTopic
			for _, rt := range rg.Topics {
				t := kmsg.NewOffsetFetchRequestTopic()
				t.Topic, t.Partitions = rt.Topic, rt.Partitions
				topics = append(topics, t)
			}
			all := rg.Topics == nil
			var code int16
			if rg.MemberID != nil || rg.MemberEpoch >= 0 {
				code = c.checkConsumerFetch(ctx, rg.Group, rg.MemberID, rg.MemberEpoch)
			}
			if code == 0 {
				sg.Topics, code = c.fetchOffsets(ctx, rg.Group, topics, all)
			}
			sg.ErrorCode = code
			resp.Groups = append(resp.Groups, sg)
		}
		return resp
	}
	// Before v8: one group. v0–1 report errors per partition only.
	topics, code := c.fetchOffsets(ctx, req.Group, req.Topics, req.Version >= 2 && req.Topics == nil)
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if code != 0 {
		if req.Version >= 2 {
			resp.ErrorCode = code
		}
		if req.Version < 2 || len(resp.Topics) == 0 {
			for _, rt := range req.Topics {
				st := kmsg.NewOffsetFetchResponseTopic()
				st.Topic = rt.Topic
				for _, p := range rt.Partitions {
					sp := kmsg.NewOffsetFetchResponseTopicPartition()
					sp.Partition, sp.Offset, sp.LeaderEpoch, sp.ErrorCode = p, -1, -1, code
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
		}
	}
	return resp
}

// fetchOffsets answers one group's offset fetch: the requested partitions
// (offset -1 where nothing is committed), or all committed ones.
func (c *Coordinator) fetchOffsets(ctx context.Context, id string, topics []kmsg.OffsetFetchRequestTopic, all bool) ([]kmsg.OffsetFetchResponseGroupTopic, int16) {
	if !c.isCoordinator(id) {
		return nil, kerr.NotCoordinator.Code
	}
	c.mu.Lock()
	_, loading := c.loading[id]
	closed := c.closed
	c.mu.Unlock()
	switch {
	case closed:
		return nil, kerr.NotCoordinator.Code
	case loading:
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	if g := c.loaded(id); g != nil {
		// A share group has no committed offsets (Kafka: GROUP_ID_NOT_FOUND).
		// Only a loaded group is checked: fetches do not load groups.
		g.mu.Lock()
		share := g.share != nil
		g.mu.Unlock()
		if share {
			return nil, kerr.GroupIDNotFound.Code
		}
	}
	fctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	committed, err := c.store.FetchOffsets(fctx, id)
	if err != nil {
		c.log.Warn("fetch offsets failed", "group", id, "err", err)
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	type key struct {
		t string
		p int32
	}
	byTP := make(map[key]metastore.CommittedOffset, len(committed))
	for _, o := range committed {
		byTP[key{o.Topic, o.Partition}] = o
	}
	part := func(topic string, p int32) kmsg.OffsetFetchResponseGroupTopicPartition {
		rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, -1, -1
		if o, ok := byTP[key{topic, p}]; ok {
			md := o.Metadata
			rp.Offset, rp.LeaderEpoch, rp.Metadata = o.Offset, o.LeaderEpoch, &md
		}
		return rp
	}
	var out []kmsg.OffsetFetchResponseGroupTopic
	if all {
		for _, o := range committed {
			if n := len(out); n == 0 || out[n-1].Topic != o.Topic {
				t := kmsg.NewOffsetFetchResponseGroupTopic()
				t.Topic = o.Topic
				out = append(out, t)
			}
			out[len(out)-1].Partitions = append(out[len(out)-1].Partitions, part(o.Topic, o.Partition))
		}
		return out, 0
	}
	for _, rt := range topics {
		t := kmsg.NewOffsetFetchResponseGroupTopic()
		t.Topic = rt.Topic
		for _, p := range rt.Partitions {
			t.Partitions = append(t.Partitions, part(rt.Topic, p))
		}
		out = append(out, t)
	}
	return out, 0
}

// OffsetDelete deletes a group's offsets for partitions its members do not
// subscribe to.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	g, code := c.acquire(ctx, req.Group)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	g.mu.Lock()
	exists, members, ptype := g.exists(), len(g.members) > 0, g.protocolType
	subscribed := g.subscribedTopicsLocked()
	unloaded, share := g.unloaded, g.share != nil
	g.mu.Unlock()
	switch {
	case unloaded:
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	case share:
		resp.ErrorCode = kerr.GroupIDNotFound.Code // Kafka: not a consumer group
		return resp
	}
	if !exists {
		committed, err := c.store.FetchOffsets(ctx, req.Group)
		if err != nil {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
		if len(committed) == 0 {
			resp.ErrorCode = kerr.GroupIDNotFound.Code
			return resp
		}
	}
	if members && ptype != "consumer" {
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp
	}
	var del []metastore.GroupPartition
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		nparts, terr := c.partitions(ctx, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case terr != nil || rp.Partition < 0 || int(rp.Partition) >= nparts:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case subscribed[rt.Topic]:
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				del = append(del, metastore.GroupPartition{Topic: rt.Topic, Partition: rp.Partition})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if err := c.store.DeleteGroupOffsets(ctx, req.Group, del); err != nil {
		c.log.Warn("delete offsets failed", "group", req.Group, "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		resp.Topics = nil
	}
	return resp
}

// subscribedTopicsLocked is the union of the topics the members of a
// consumer-protocol group subscribe to, read from their metadata.
func (g *group) subscribedTopicsLocked() map[string]bool {
	out := make(map[string]bool)
	if g.consumer != nil {
		// A consumer group: the topics its subscriptions resolved to.
		for name := range g.consumer.subscribed {
			out[name] = true
		}
		return out
	}
	if g.protocolType != "consumer" {
		return out
	}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.protocol != "" && p.Name != g.protocol {
				continue
			}
			var md kmsg.ConsumerMemberMetadata
			if err := md.ReadFrom(p.Metadata); err != nil {
				continue
			}
			for _, t := range md.Topics {
				out[t] = true
			}
			for _, o := range md.OwnedPartitions {
				out[o.Topic] = true
			}
		}
	}
	return out
}

// checkConsumerCommitLocked is Kafka's validateOffsetCommit for a
// consumer group: a commit from outside the group (member epoch < 0) only
// while it has no members; a member's commit with its current member
// epoch (else STALE_MEMBER_EPOCH) and, unless transactional, OffsetCommit
// v9 or later. A transactional commit that names no member is not fenced.
func (g *group) checkConsumerCommitLocked(memberID string, memberEpoch int32, oldVersion, txn bool) int16 {
	cg := g.consumer
	switch {
	case g.unloaded:
		return kerr.NotCoordinator.Code
	case memberEpoch < 0 && len(cg.members) == 0:
		return 0
	case txn && memberEpoch < 0 && memberID == "":
		return 0
	}
	m, ok := cg.members[memberID]
	switch {
	case !ok:
		return kerr.UnknownMemberID.Code
	case !txn && oldVersion && m.classic == nil:
		return kerr.UnsupportedVersion.Code
	case memberEpoch != m.epoch && m.classic != nil:
		return kerr.IllegalGeneration.Code // a classic member's generation is its member epoch
	case memberEpoch != m.epoch:
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}

// checkConsumerFetch is Kafka's validateOffsetFetch for OffsetFetch v9+
// requests that name a member: in a consumer group the member must exist
// (UNKNOWN_MEMBER_ID) at the epoch it names (STALE_MEMBER_EPOCH). Other
// groups are not checked.
func (c *Coordinator) checkConsumerFetch(ctx context.Context, id string, memberID *string, memberEpoch int32) int16 {
	g, code := c.acquire(ctx, id)
	if code != 0 {
		return code
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.unloaded:
		return kerr.NotCoordinator.Code
	case g.consumer == nil:
		return 0
	}
	mid := ""
	if memberID != nil {
		mid = *memberID
	}
	m, ok := g.consumer.members[mid]
	switch {
	case !ok:
		return g.confirmLocked(kerr.UnknownMemberID.Code)
	case memberEpoch != m.epoch && m.classic != nil:
		return kerr.IllegalGeneration.Code
	case memberEpoch != m.epoch:
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}
