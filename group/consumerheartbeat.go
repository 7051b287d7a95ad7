package group

// ConsumerGroupHeartbeat, versions 0–1 (KIP-848). A member joins with
// member epoch 0 (v1: with the member id it generated; v0: an empty id
// gets one from the coordinator), heartbeats with the epoch it was last
// given, and leaves with -1 (or -2, a static member that will be back:
// its partitions wait for it until its session lapses). Each heartbeat
// may carry the member's subscription (topic names, or a regex the
// coordinator resolves with Go's regexp, RE2 like Kafka's), its server
// assignor, and the partitions it owns; the answer carries its epoch and,
// when it changed or the member's view differs, its assignment.
//
// Errors as Kafka answers them: INVALID_REQUEST for malformed requests,
// UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION, UNKNOWN_MEMBER_ID,
// FENCED_MEMBER_EPOCH (an epoch ahead of the member's, or behind it other
// than the previous epoch with a subset of its partitions: a lost
// response), UNRELEASED_INSTANCE_ID (a static member joining while its
// previous incarnation is still in), FENCED_INSTANCE_ID,
// GROUP_MAX_SIZE_REACHED, GROUP_ID_NOT_FOUND for a classic group with
// members that does not convert (migration.go: the policy, its protocol
// type, its size, malformed metadata; COORDINATOR_LOAD_IN_PROGRESS while
// it rebalances), and NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE.

import (
	"context"
	"encoding/hex"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
)

// TopicInfo is one topic as consumer groups' subscriptions see it.
type TopicInfo struct {
	Name       string
	ID         metastore.TopicID
	Partitions int
}

// Bounds on what one heartbeat may carry.
const (
	maxSubscribedTopics = 10000
	maxTopicNameLen     = 249
	maxRegexLen         = 1000
	maxIDLen            = 1000 // member, instance and rack ids
	maxOwnedPartitions  = 1 << 20
)

// ConsumerGroupHeartbeat serves one heartbeat of a consumer group member.
func (c *Coordinator) ConsumerGroupHeartbeat(ctx context.Context, req *kmsg.ConsumerGroupHeartbeatRequest, client Client) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	fail := func(code int16, msg string) *kmsg.ConsumerGroupHeartbeatResponse {
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		return resp
	}
	if code, msg := checkHeartbeat(req); code != 0 {
		return fail(code, msg)
	}
	var re *regexp.Regexp
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		var err error
		if re, err = compileSubscription(*req.SubscribedTopicRegex); err != nil {
			return fail(kerr.InvalidRegularExpression.Code, "SubscribedTopicRegex does not compile: "+err.Error())
		}
	}
	var topics []TopicInfo
	if c.topics != nil && req.MemberEpoch >= 0 {
		var err error
		if topics, err = c.topics(ctx); err != nil {
			c.log.Warn("consumer group heartbeat: list topics", "group", req.Group, "err", err)
			return fail(kerr.CoordinatorNotAvailable.Code, "")
		}
	}
	g, code := c.acquire(ctx, req.Group)
	if code != 0 {
		return fail(code, "")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.unloaded {
		return fail(kerr.NotCoordinator.Code, "")
	}
	if g.share != nil {
		return fail(kerr.GroupIDNotFound.Code, "Group "+g.id+" is not a consumer group.")
	}
	upgraded := false
	if g.consumer == nil {
		if len(g.members) > 0 || g.state != stateEmpty {
			// A member joining a classic group with members converts it
			// online, where Kafka would (migration.go).
			if req.MemberEpoch != 0 {
				return fail(kerr.GroupIDNotFound.Code, "group "+g.id+" is a classic group")
			}
			if code, msg := g.upgradeLocked(topics); code != 0 {
				return fail(code, msg)
			}
			upgraded = true
		} else {
			// An empty classic group becomes a consumer group; member
			// ids it handed out are forgotten (their JoinGroups join
			// the consumer group).
			for _, t := range g.pending {
				t.Stop()
			}
			g.pending, g.pendingOrder = make(map[string]*time.Timer), nil
			g.consumer = newConsumerGroup()
		}
	}
	if req.MemberEpoch < 0 {
		return g.leaveConsumerLocked(req, resp)
	}
	resp = g.heartbeatConsumerLocked(req, resp, re, topics, client)
	if upgraded && !g.unloaded && (resp.ErrorCode != 0 || !g.savedSince()) {
		// The conversion was not saved: the store still holds the
		// classic group, which the next request reloads.
		g.unloadLocked()
	}
	return resp
}

// compileSubscription compiles a subscribed topic regex to match whole
// topic names, as Kafka's matcher does (RE2J's matches()).
func compileSubscription(expr string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(expr); err != nil {
		return nil, err // the client's expression, not our wrapping, in the message
	}
	return regexp.Compile("^(?:" + expr + ")$")
}

// checkHeartbeat is Kafka's validation of the request's fields.
func checkHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) (int16, string) {
	invalid := func(msg string) (int16, string) { return kerr.InvalidRequest.Code, msg }
	switch {
	case req.Group == "":
		return invalid("GroupId can't be empty.")
	case len(req.MemberID) > maxIDLen:
		return invalid("MemberId is too long.")
	case req.InstanceID != nil && (*req.InstanceID == "" || len(*req.InstanceID) > maxIDLen):
		return invalid("InstanceId can't be empty or that long.")
	case req.RackID != nil && (*req.RackID == "" || len(*req.RackID) > maxIDLen):
		return invalid("RackId can't be empty or that long.")
	case req.MemberEpoch < epochStaticLeave:
		return invalid("MemberEpoch is invalid.")
	case req.MemberID == "" && (req.Version >= 1 || req.MemberEpoch != 0):
		return invalid("MemberId can't be empty.")
	case req.MemberEpoch == epochStaticLeave && req.InstanceID == nil:
		return invalid("InstanceId can't be null when MemberEpoch is -2.")
	case len(req.SubscribedTopicNames) > maxSubscribedTopics:
		return invalid("Too many SubscribedTopicNames.")
	case req.SubscribedTopicRegex != nil && len(*req.SubscribedTopicRegex) > maxRegexLen:
		return kerr.InvalidRegularExpression.Code, "SubscribedTopicRegex is too long."
	case req.ServerAssignor != nil && !supportedAssignor(*req.ServerAssignor):
		return kerr.UnsupportedAssignor.Code, "ServerAssignor " + *req.ServerAssignor + " is not supported. Supported assignors: uniform, range."
	}
	for _, t := range req.SubscribedTopicNames {
		if t == "" || len(t) > maxTopicNameLen {
			return invalid("SubscribedTopicNames holds an invalid topic name.")
		}
	}
	n := 0
	for _, t := range req.Topics {
		n += len(t.Partitions)
	}
	if n > maxOwnedPartitions {
		return invalid("Too many owned partitions.")
	}
	if req.MemberEpoch == 0 {
		switch {
		case req.RebalanceTimeoutMillis < 0:
			return invalid("RebalanceTimeoutMs must be provided in first request.")
		case len(req.Topics) > 0:
			return invalid("TopicPartitions must be empty when (re-)joining.")
		case req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
			return invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
		}
	}
	return 0, ""
}

// ownedOf is the partitions a heartbeat reports owning; nil if it does
// not report them.
func ownedOf(req *kmsg.ConsumerGroupHeartbeatRequest) partSet {
	if req.Topics == nil {
		return nil
	}
	out := make(partSet)
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			out[tp{t.TopicID, p}] = struct{}{}
		}
	}
	return out
}

func subset(a, b partSet) bool {
	for p := range a {
		if _, ok := b[p]; !ok {
			return false
		}
	}
	return true
}

// leaveConsumerLocked serves member epochs -1 and -2.
func (g *group) leaveConsumerLocked(req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *kmsg.ConsumerGroupHeartbeatResponse {
	cg := g.consumer
	id := req.MemberID
	if req.InstanceID != nil {
		if cur, ok := cg.statics[*req.InstanceID]; ok {
			if cur != id {
				resp.ErrorCode = kerr.FencedInstanceID.Code
				return resp
			}
		}
	}
	m, ok := cg.members[id]
	if !ok {
		resp.ErrorCode = g.confirmLocked(kerr.UnknownMemberID.Code)
		return resp
	}
	resp.MemberID, resp.MemberEpoch = &req.MemberID, req.MemberEpoch
	if req.MemberEpoch == epochStaticLeave {
		// The static member will be back: it keeps its partitions until
		// its session lapses or it rejoins.
		if m.epoch != epochStaticLeave {
			m.prevEpoch, m.epoch = m.epoch, epochStaticLeave
		}
		g.touchLocked(m)
		if !g.saveLocked() {
			resp.ErrorCode, resp.MemberID, resp.MemberEpoch = kerr.NotCoordinator.Code, nil, 0
		}
		return resp
	}
	g.c.log.Info("consumer group member left", "group", g.id, "member", m.id)
	g.fenceConsumerMemberLocked(m)
	if !g.saveLocked() {
		resp.ErrorCode, resp.MemberID, resp.MemberEpoch = kerr.NotCoordinator.Code, nil, 0
	}
	return resp
}

// removeConsumerMemberLocked drops m and moves the group epoch on, with
// a new target for the rest. The caller saves.
func (g *group) removeConsumerMemberLocked(m *cmember) {
	cg := g.consumer
	if m.timer != nil {
		m.timer.Stop()
	}
	delete(cg.members, m.id)
	if m.instanceID != "" && cg.statics[m.instanceID] == m.id {
		delete(cg.statics, m.instanceID)
	}
	g.generation++
	g.computeTargetLocked(nil)
}

// heartbeatConsumerLocked serves a join (epoch 0) or a heartbeat.
func (g *group) heartbeatConsumerLocked(req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse, re *regexp.Regexp, topics []TopicInfo, client Client) *kmsg.ConsumerGroupHeartbeatResponse {
	cg := g.consumer
	fail := func(code int16) *kmsg.ConsumerGroupHeartbeatResponse {
		resp.ErrorCode = code
		return resp
	}
	owned := ownedOf(req)
	id := req.MemberID
	if id == "" { // v0 join
		id = newMemberID(client.ID)
	}
	instance := ""
	if req.InstanceID != nil {
		instance = *req.InstanceID
	}
	now := time.Now()
	bump := false
	m, known := cg.members[id]
	switch {
	case req.MemberEpoch == 0 && instance != "" && cg.statics[instance] != "" && cg.statics[instance] != id:
		old := cg.members[cg.statics[instance]]
		if old == nil {
			delete(cg.statics, instance)
			return fail(kerr.CoordinatorNotAvailable.Code)
		}
		if old.epoch != epochStaticLeave && old.classic == nil {
			// (A member of the classic protocol is replaced at once, as
			// in Kafka: it cannot have sent the -2 leave.)
			return fail(kerr.UnreleasedInstanceID.Code)
		}
		// The static member is back under a new member id: it takes its
		// previous incarnation's place, epoch and partitions.
		if known {
			g.dropConsumerMemberLocked(m)
		}
		g.dropConsumerMemberLocked(old)
		m = &cmember{
			id: id, instanceID: instance, epoch: old.prevEpoch, prevEpoch: old.prevEpoch, state: old.state,
			assigned: old.assigned, revoking: old.revoking, target: old.target, revokeBy: old.revokeBy,
			topics: old.topics, regex: old.regex, re: old.re, assignor: old.assignor, rackID: old.rackID,
			rebalanceTimeout: old.rebalanceTimeout,
		}
		cg.members[id] = m
		cg.statics[instance] = id
		g.c.log.Info("static consumer group member rejoined", "group", g.id, "instance", instance, "member", id)
	case req.MemberEpoch == 0 && known:
		// A rejoin with the same id (a lost response, or a member that
		// abandoned its partitions): it owns nothing now and gets its
		// target again.
		if m.instanceID != "" && m.instanceID != instance {
			return fail(kerr.FencedInstanceID.Code)
		}
		if m.epoch == epochStaticLeave {
			m.epoch = m.prevEpoch
		} else {
			m.assigned, m.revoking, m.revokeBy = nil, nil, time.Time{}
			m.prevEpoch, m.epoch, m.state = 0, 0, memberStable
		}
	case req.MemberEpoch == 0:
		if len(cg.members) >= g.c.cMaxSize {
			return fail(kerr.GroupMaxSizeReached.Code)
		}
		m = &cmember{id: id, instanceID: instance}
		cg.members[id] = m
		if instance != "" {
			cg.statics[instance] = id
		}
		bump = true
		g.c.log.Info("consumer group member joined", "group", g.id, "member", id, "instance", instance)
	case !known:
		return fail(g.confirmLocked(kerr.UnknownMemberID.Code))
	case instance != "" && cg.statics[instance] != id:
		return fail(kerr.FencedInstanceID.Code)
	case req.MemberEpoch > m.epoch:
		return fail(kerr.FencedMemberEpoch.Code)
	case req.MemberEpoch < m.epoch && (req.MemberEpoch != m.prevEpoch || owned == nil || !subset(owned, m.assigned)):
		return fail(kerr.FencedMemberEpoch.Code)
	}

	// The request's fields, where given. A member that spoke the
	// classic protocol speaks this one from now on.
	m.classic = nil
	m.clientID, m.clientHost = client.ID, client.Host
	if req.RackID != nil {
		m.rackID = *req.RackID
	}
	if req.RebalanceTimeoutMillis >= 0 {
		m.rebalanceTimeout = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
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
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regex {
		m.regex, m.re = *req.SubscribedTopicRegex, re
		bump = true
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor = *req.ServerAssignor
		bump = true
	}
	g.touchLocked(m)

	// The group epoch moves with membership, subscriptions and the
	// subscribed topics' partitions; the target follows at once.
	if subs := resolveSubscriptions(cg, topics); bump || !sameSubscribed(subs, cg.subscribed) || g.preferredAssignorLocked() != cg.assignor {
		g.generation++
		g.computeTargetLocked(topics)
	}
	beforeEpoch := m.epoch
	changed := cg.reconcile(m, g.generation, owned, now)
	if m.state == memberUnrevoked {
		g.armRevocationLocked(m)
	}
	if bump || changed || beforeEpoch != m.epoch || req.MemberEpoch == 0 || !g.savedSince() {
		if !g.saveLocked() {
			return fail(kerr.NotCoordinator.Code)
		}
	}
	resp.MemberID = &m.id
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(g.c.cHeartbeat / time.Millisecond)
	if req.MemberEpoch == 0 || changed || owned == nil && req.MemberEpoch != m.epoch || owned != nil && !owned.equal(m.assigned) {
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		for _, st := range encodeParts(m.assigned) {
			at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
			at.TopicID = decodeID(st.ID)
			at.Partitions = st.Partitions
			a.Topics = append(a.Topics, at)
		}
		if a.Topics == nil {
			a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
		}
		resp.Assignment = &a
	}
	return resp
}

// savedSince reports whether the store holds the group's current epoch.
func (g *group) savedSince() bool { return g.savedGen == g.generation }

func decodeID(s string) metastore.TopicID {
	var id metastore.TopicID
	for p := range decodeParts([]savedTopic{{ID: s, Partitions: []int32{0}}}) {
		id = p.t
	}
	return id
}

// dropConsumerMemberLocked removes m without moving the epoch (a static
// member's incarnations swapping places).
func (g *group) dropConsumerMemberLocked(m *cmember) {
	if m.timer != nil {
		m.timer.Stop()
	}
	delete(g.consumer.members, m.id)
	if m.instanceID != "" && g.consumer.statics[m.instanceID] == m.id {
		delete(g.consumer.statics, m.instanceID)
	}
}

// resolveSubscriptions maps every subscribed topic that exists to its id
// and partition count.
func resolveSubscriptions(cg *consumerGroup, topics []TopicInfo) map[string]string {
	out := make(map[string]string)
	for _, t := range topics {
		for _, m := range cg.members {
			if m.subscribes(t.Name) {
				out[t.Name] = subscribedValue(t.ID, t.Partitions)
				break
			}
		}
	}
	return out
}

// subscribedValue is how a resolved subscription names a topic: "hex
// id/partitions". Text, so it survives the JSON the group is saved as
// (raw id bytes in a JSON string are not: most ids are not valid UTF-8).
func subscribedValue(id metastore.TopicID, partitions int) string {
	return hex.EncodeToString(id[:]) + "/" + strconv.Itoa(partitions)
}

// parseSubscribedValue reads a subscribedValue.
func parseSubscribedValue(v string) (metastore.TopicID, int, bool) {
	var id metastore.TopicID
	hexID, count, ok := strings.Cut(v, "/")
	if !ok || hex.DecodedLen(len(hexID)) != len(id) {
		return id, 0, false
	}
	if _, err := hex.Decode(id[:], []byte(hexID)); err != nil {
		return id, 0, false
	}
	n, err := strconv.Atoi(count)
	if err != nil {
		return id, 0, false
	}
	return id, n, true
}

func sameSubscribed(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// preferredAssignorLocked is the assignor most members ask for (ties:
// uniform, then range), uniform when none asks.
func (g *group) preferredAssignorLocked() string {
	votes := map[string]int{}
	for _, m := range g.consumer.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	best := AssignorUniform
	for _, name := range []string{AssignorUniform, AssignorRange} {
		if votes[name] > votes[best] {
			best = name
		}
	}
	return best
}

// computeTargetLocked computes the target assignment at the group epoch.
// topics nil keeps the last resolution of the subscriptions (a member
// leaving changes nothing about topics).
func (g *group) computeTargetLocked(topics []TopicInfo) {
	cg := g.consumer
	if topics != nil {
		cg.subscribed = resolveSubscriptions(cg, topics)
	}
	var infos []topicInfo
	if topics != nil {
		for _, t := range topics {
			if _, ok := cg.subscribed[t.Name]; ok {
				infos = append(infos, topicInfo{name: t.Name, id: t.ID, partitions: int32(t.Partitions)})
			}
		}
	} else {
		kept := make(map[string]string)
		for name, v := range cg.subscribed {
			id, n, ok := parseSubscribedValue(v)
			if !ok {
				continue
			}
			// Only topics some remaining member still subscribes to.
			for _, m := range cg.members {
				if m.subscribes(name) {
					infos = append(infos, topicInfo{name: name, id: id, partitions: int32(n)})
					kept[name] = v
					break
				}
			}
		}
		cg.subscribed = kept
	}
	sortTopics(infos)
	in := assignInput{topics: infos}
	for _, id := range cg.memberIDs() {
		in.members = append(in.members, cg.members[id])
	}
	cg.assignor = g.preferredAssignorLocked()
	target := assign(cg.assignor, in)
	for id, m := range cg.members {
		m.target = target[id]
	}
}

// touchLocked extends m's session: group.consumer.session.timeout.ms,
// or for a member of the classic protocol the session of its JoinGroup.
func (g *group) touchLocked(m *cmember) {
	session := g.c.cSession
	if m.classic != nil {
		session = m.classic.session
	}
	m.deadline = time.Now().Add(session)
	g.armLocked(m)
}

// armRevocationLocked makes sure m's timer fires by the time its
// revocation is due.
func (g *group) armRevocationLocked(m *cmember) { g.armLocked(m) }

// armLocked sets m's timer to its next deadline (nextDue).
func (g *group) armLocked(m *cmember) {
	d := time.Until(m.nextDue())
	if m.timer == nil {
		m.timer = time.AfterFunc(d, func() { g.expireConsumer(m) })
		return
	}
	m.timer.Reset(d)
}

// nextDue is the earliest of m's deadlines: its session, its revocation
// (while revoking) and, for a classic member, the rejoin and SyncGroup it
// was asked for.
func (m *cmember) nextDue() time.Time {
	next := m.deadline
	due := []time.Time{}
	if m.state == memberUnrevoked {
		due = append(due, m.revokeBy)
	}
	if m.classic != nil {
		due = append(due, m.classic.joinBy, m.classic.syncBy)
	}
	for _, t := range due {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	return next
}

// expireConsumer fences m if its session lapsed or it missed a deadline
// (revocation; a classic member's rejoin or SyncGroup); otherwise it
// rearms the timer.
func (g *group) expireConsumer(m *cmember) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.unloaded || g.consumer == nil || g.consumer.members[m.id] != m {
		return
	}
	now := time.Now()
	if due := m.nextDue(); now.Before(due) {
		m.timer.Reset(due.Sub(now))
		return
	}
	switch {
	case !now.Before(m.deadline):
		g.c.log.Info("consumer group member session expired", "group", g.id, "member", m.id)
	case m.state == memberUnrevoked && !m.revokeBy.IsZero() && !now.Before(m.revokeBy):
		g.c.log.Info("consumer group member did not revoke in time; fencing it", "group", g.id, "member", m.id)
	default:
		g.c.log.Info("classic member of a consumer group did not rejoin or sync in time; fencing it", "group", g.id, "member", m.id)
	}
	g.fenceConsumerMemberLocked(m)
	g.saveLocked()
}
