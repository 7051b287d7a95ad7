package group

// ShareGroupHeartbeat, version 1 (KIP-932; version 0 was Kafka 4.0's
// early access and is not served). A member joins with member epoch 0
// and the member id it generated, heartbeats with the epoch it was last
// given, and leaves with -1. A join names the subscribed topics; later
// heartbeats name them only when they change. The answer carries the
// member's epoch and, when it changed, its assignment.
//
// Errors as Kafka answers them: INVALID_REQUEST for malformed requests,
// UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH (any epoch other than the
// member's), GROUP_MAX_SIZE_REACHED (group.share.max.size),
// GROUP_ID_NOT_FOUND for a group of another type, and NOT_COORDINATOR /
// COORDINATOR_NOT_AVAILABLE.

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ShareGroupHeartbeat serves one heartbeat of a share group member.
func (c *Coordinator) ShareGroupHeartbeat(ctx context.Context, req *kmsg.ShareGroupHeartbeatRequest, client Client) *kmsg.ShareGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
	fail := func(code int16, msg string) *kmsg.ShareGroupHeartbeatResponse {
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		return resp
	}
	if code, msg := checkShareHeartbeat(req); code != 0 {
		return fail(code, msg)
	}
	var topics []TopicInfo
	if c.topics != nil && req.MemberEpoch >= 0 {
		var err error
		if topics, err = c.topics(ctx); err != nil {
			c.log.Warn("share group heartbeat: list topics", "group", req.GroupID, "err", err)
			return fail(kerr.CoordinatorNotAvailable.Code, "")
		}
	}
	g, code := c.acquire(ctx, req.GroupID)
	if code != 0 {
		return fail(code, "")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.unloaded:
		return fail(kerr.NotCoordinator.Code, "")
	case g.share == nil && (g.consumer != nil || g.exists()):
		return fail(kerr.GroupIDNotFound.Code, "Group "+g.id+" is not a share group.")
	case g.share == nil:
		g.share = newShareGroup() // a group that does not exist yet
	}
	if req.MemberEpoch == epochLeave {
		return g.leaveShareLocked(req, resp)
	}
	return g.heartbeatShareLocked(req, resp, topics, client)
}

// checkShareHeartbeat is Kafka's validation of the request's fields.
func checkShareHeartbeat(req *kmsg.ShareGroupHeartbeatRequest) (int16, string) {
	invalid := func(msg string) (int16, string) { return kerr.InvalidRequest.Code, msg }
	switch {
	case req.GroupID == "":
		return invalid("GroupId can't be empty.")
	case req.MemberID == "":
		return invalid("MemberId can't be empty.")
	case len(req.MemberID) > maxIDLen:
		return invalid("MemberId is too long.")
	case req.RackID != nil && (*req.RackID == "" || len(*req.RackID) > maxIDLen):
		return invalid("RackId can't be empty or that long.")
	case req.MemberEpoch < epochLeave:
		return invalid("MemberEpoch is invalid.")
	case req.MemberEpoch == 0 && len(req.SubscribedTopicNames) == 0:
		return invalid("SubscribedTopicNames must be set in first request.")
	case len(req.SubscribedTopicNames) > maxSubscribedTopics:
		return invalid("Too many SubscribedTopicNames.")
	}
	for _, t := range req.SubscribedTopicNames {
		if t == "" || len(t) > maxTopicNameLen {
			return invalid("SubscribedTopicNames holds an invalid topic name.")
		}
	}
	return 0, ""
}

// leaveShareLocked serves member epoch -1.
func (g *group) leaveShareLocked(req *kmsg.ShareGroupHeartbeatRequest, resp *kmsg.ShareGroupHeartbeatResponse) *kmsg.ShareGroupHeartbeatResponse {
	m, ok := g.share.members[req.MemberID]
	if !ok {
		resp.ErrorCode = g.confirmLocked(kerr.UnknownMemberID.Code)
		return resp
	}
	g.c.log.Info("share group member left", "group", g.id, "member", m.id)
	g.removeShareMemberLocked(m)
	if !g.saveLocked() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	resp.MemberID, resp.MemberEpoch = &req.MemberID, epochLeave
	return resp
}

// heartbeatShareLocked serves a join (epoch 0) or a heartbeat.
func (g *group) heartbeatShareLocked(req *kmsg.ShareGroupHeartbeatRequest, resp *kmsg.ShareGroupHeartbeatResponse, topics []TopicInfo, client Client) *kmsg.ShareGroupHeartbeatResponse {
	sh := g.share
	fail := func(code int16) *kmsg.ShareGroupHeartbeatResponse {
		resp.ErrorCode = code
		return resp
	}
	bump := false
	m, known := sh.members[req.MemberID]
	switch {
	case req.MemberEpoch == 0 && known:
		// A rejoin (a fenced member, or a lost response): it gets its
		// assignment at the current epoch again.
		m.epoch = 0
	case req.MemberEpoch == 0:
		if len(sh.members) >= g.c.sMaxSize {
			return fail(kerr.GroupMaxSizeReached.Code)
		}
		m = &smember{id: req.MemberID}
		sh.members[m.id] = m
		bump = true
		g.c.log.Info("share group member joined", "group", g.id, "member", m.id)
	case !known:
		return fail(g.confirmLocked(kerr.UnknownMemberID.Code))
	case req.MemberEpoch != m.epoch:
		return fail(kerr.FencedMemberEpoch.Code)
	}

	m.clientID, m.clientHost = client.ID, client.Host
	if req.RackID != nil {
		m.rackID = *req.RackID
	}
	if req.SubscribedTopicNames != nil {
		names := slices.Clone(req.SubscribedTopicNames)
		sort.Strings(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.topics) {
			m.topics = names
			bump = true
		}
	}
	g.touchShareLocked(m)

	if subs := sh.resolve(topics); bump || !sameSubscribed(subs, sh.subscribed) {
		g.generation++
		sh.subscribed = subs
		g.computeShareTargetLocked()
	}
	moved := m.epoch != g.generation
	m.epoch = g.generation
	if bump || moved || !g.savedSince() {
		if !g.saveLocked() {
			return fail(kerr.NotCoordinator.Code)
		}
	}
	resp.MemberID = &m.id
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(g.c.sHeartbeat / time.Millisecond)
	if moved || req.MemberEpoch == 0 {
		a := kmsg.NewShareGroupHeartbeatResponseAssignment()
		a.TopicPartitions = []kmsg.ShareGroupHeartbeatResponseAssignmentTopicPartition{}
		for _, st := range encodeParts(m.assigned) {
			at := kmsg.NewShareGroupHeartbeatResponseAssignmentTopicPartition()
			at.TopicID = decodeID(st.ID)
			at.Partitions = st.Partitions
			a.TopicPartitions = append(a.TopicPartitions, at)
		}
		resp.Assignment = &a
	}
	return resp
}
