package group

// Online migration between a classic group and a consumer group, as
// Kafka's GroupMetadataManager does it (KIP-848), under
// group.consumer.migration.policy.
//
// Upgrade: a ConsumerGroupHeartbeat joining (member epoch 0) a classic
// group with members converts it when the policy allows upgrades, the
// group uses the consumer embedded protocol (protocol type "consumer")
// and has no more members than group.consumer.max.size. Each classic
// member becomes a member of the consumer group that still speaks the
// classic protocol: at the classic generation, owning what it was last
// synced (its ConsumerProtocolAssignment), subscribed to the topics of
// its ConsumerProtocolSubscription, with the session timeout of its
// JoinGroup. The joining member then moves the group epoch on as any
// member does. The conversion and the joiner's state are saved in one
// compare-and-set before the heartbeat is answered. Unlike Kafka, only a
// Stable classic group converts: in the middle of a rebalance this
// coordinator no longer knows what a member owns (assignments are reset
// when a join phase ends), so the joiner is answered
// COORDINATOR_LOAD_IN_PROGRESS, which clients retry, until it is; the
// same while a member owns partitions of a topic the coordinator's topic
// list (a cache) does not show yet, rather than dropping them as Kafka
// drops unknown topics, since the target could then hand them out while
// the member still consumes them.
//
// Classic members of a consumer group keep talking JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup and OffsetCommit. A JoinGroup updates the
// member (its subscription and owned partitions from the metadata; a
// new member, MEMBER_ID_REQUIRED first on v4+ as Kafka) and reconciles
// it toward its target at once; the response carries its member epoch as
// the generation, no leader and no member list. SyncGroup answers the
// member's assigned partitions as a ConsumerProtocolAssignment, of the
// version of its metadata. Heartbeat answers REBALANCE_IN_PROGRESS when
// the member must rejoin: its epoch is behind the group epoch, it must
// revoke partitions, or partitions it waits for are free now. A classic
// member that does not rejoin within its rebalance timeout after being
// told so, or does not sync within it after joining, is fenced. Their
// generation is checked against the member epoch (ILLEGAL_GENERATION).
//
// Downgrade: when the last member speaking the consumer protocol leaves
// (or is fenced) and at least one member remains, all of them classic,
// the group converts back to a classic group when the policy allows
// downgrades: its members, their protocols and sessions, the target
// assignment as each member's assignment, at the group epoch as the
// generation, and a rebalance starts at once; the group is saved in
// PreparingRebalance, and a coordinator that loads it in that state
// starts the rebalance again.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
)

// MigrationPolicy is Kafka's group.consumer.migration.policy.
type MigrationPolicy string

// The values of group.consumer.migration.policy.
const (
	MigrationBidirectional MigrationPolicy = "bidirectional"
	MigrationUpgrade       MigrationPolicy = "upgrade"
	MigrationDowngrade     MigrationPolicy = "downgrade"
	MigrationDisabled      MigrationPolicy = "disabled"
)

// ParseMigrationPolicy reads a policy name, case-insensitively.
func ParseMigrationPolicy(s string) (MigrationPolicy, error) {
	p := MigrationPolicy(strings.ToLower(strings.TrimSpace(s)))
	switch p {
	case MigrationBidirectional, MigrationUpgrade, MigrationDowngrade, MigrationDisabled:
		return p, nil
	}
	return "", fmt.Errorf("unknown migration policy %q: want bidirectional, upgrade, downgrade or disabled", s)
}

func (p MigrationPolicy) upgrades() bool {
	return p == MigrationBidirectional || p == MigrationUpgrade
}

func (p MigrationPolicy) downgrades() bool {
	return p == MigrationBidirectional || p == MigrationDowngrade
}

// consumerProtocolType is the protocol type of the consumer embedded
// protocol, the only one a consumer group's classic members may use.
const consumerProtocolType = "consumer"

// classicMember is what a consumer group keeps of a member that speaks
// the classic protocol.
type classicMember struct {
	session   time.Duration
	protocols []metastore.GroupProtocol // as it joined, in its order of preference
	// Not saved: a coordinator that loads the group leaves these to
	// the session timeout.
	joinBy time.Time // it was told to rejoin, and must by then
	syncBy time.Time // it joined, and must sync by then
}

// metadata is the member's ConsumerProtocol metadata (of its first
// protocol: all carry the same subscription).
func (cm *classicMember) metadata() []byte {
	if len(cm.protocols) == 0 {
		return nil
	}
	return cm.protocols[0].Metadata
}

func (cm *classicMember) protocolName() string {
	if len(cm.protocols) == 0 {
		return ""
	}
	return cm.protocols[0].Name
}

// subscription is a decoded ConsumerProtocolSubscription.
type subscription struct {
	version int16
	topics  []string // sorted, without duplicates
	owned   map[string][]int32
	rack    *string
}

var errMalformedProtocol = errors.New("malformed consumer protocol metadata")

// decodeSubscription reads a classic member's ConsumerProtocol metadata,
// bounded as a heartbeat's subscription is.
func decodeSubscription(b []byte) (subscription, error) {
	var md kmsg.ConsumerMemberMetadata
	if err := md.ReadFrom(b); err != nil {
		return subscription{}, fmt.Errorf("%w: %v", errMalformedProtocol, err)
	}
	if len(md.Topics) > maxSubscribedTopics {
		return subscription{}, fmt.Errorf("%w: too many topics", errMalformedProtocol)
	}
	sub := subscription{version: md.Version, owned: make(map[string][]int32), rack: md.Rack}
	for _, t := range md.Topics {
		if t == "" || len(t) > maxTopicNameLen {
			return subscription{}, fmt.Errorf("%w: invalid topic name", errMalformedProtocol)
		}
		sub.topics = append(sub.topics, t)
	}
	sort.Strings(sub.topics)
	sub.topics = slices.Compact(sub.topics)
	n := 0
	for _, o := range md.OwnedPartitions {
		n += len(o.Partitions)
		if n > maxOwnedPartitions {
			return subscription{}, fmt.Errorf("%w: too many owned partitions", errMalformedProtocol)
		}
		sub.owned[o.Topic] = append(sub.owned[o.Topic], o.Partitions...)
	}
	if sub.rack != nil && (*sub.rack == "" || len(*sub.rack) > maxIDLen) {
		sub.rack = nil
	}
	return sub, nil
}

// protocolVersion is the version a member's ConsumerProtocol metadata
// starts with, which its assignment is encoded in (0 if unreadable).
func protocolVersion(metadata []byte) int16 {
	if len(metadata) < 2 {
		return 0
	}
	return int16(metadata[0])<<8 | int16(metadata[1])
}

// topicIndex maps topic names to ids and back.
type topicIndex struct {
	byName map[string]TopicInfo
	byID   map[metastore.TopicID]string
}

func indexTopics(ts []TopicInfo) topicIndex {
	ix := topicIndex{byName: make(map[string]TopicInfo, len(ts)), byID: make(map[metastore.TopicID]string, len(ts))}
	for _, t := range ts {
		ix.byName[t.Name] = t
		ix.byID[t.ID] = t.Name
	}
	return ix
}

// subscribedIndex maps the topics a consumer group's subscriptions
// resolved to (consumerGroup.subscribed), for when no topic list is at
// hand.
func subscribedIndex(cg *consumerGroup) topicIndex {
	return topicIndex{byName: map[string]TopicInfo{}, byID: map[metastore.TopicID]string{}}.withSubscribed(cg)
}

// withSubscribed adds the topics the group's subscriptions resolved to
// that ix lacks: a topic list read from a cache may trail the one the
// group's target was computed from, and a member's partitions of a topic
// the group knows must never be taken for none.
func (ix topicIndex) withSubscribed(cg *consumerGroup) topicIndex {
	for name, v := range cg.subscribed {
		if _, ok := ix.byName[name]; ok {
			continue
		}
		var id metastore.TopicID
		if len(v) < len(id)+2 {
			continue
		}
		copy(id[:], v[:len(id)])
		n, _ := strconv.Atoi(v[len(id)+1:])
		ix.byID[id] = name
		ix.byName[name] = TopicInfo{Name: name, ID: id, Partitions: n}
	}
	return ix
}

// parts maps named partitions to ids; topics that do not exist and
// partitions out of range are left out, and counted in dropped.
func (ix topicIndex) parts(named map[string][]int32) (out partSet, dropped int) {
	out = make(partSet)
	for name, ps := range named {
		t, ok := ix.byName[name]
		if !ok {
			dropped += len(ps)
			continue
		}
		for _, p := range ps {
			if p >= 0 && (t.Partitions == 0 || int(p) < t.Partitions) {
				out[tp{t.ID, p}] = struct{}{}
			} else {
				dropped++
			}
		}
	}
	return out, dropped
}

// decodeAssignment reads a ConsumerProtocolAssignment; an empty one
// (a member the leader gave nothing) assigns nothing. unknown reports
// partitions of topics (or beyond partition counts) ix does not know.
func (ix topicIndex) decodeAssignment(b []byte) (s partSet, unknown bool, err error) {
	if len(b) == 0 {
		return make(partSet), false, nil
	}
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(b); err != nil {
		return nil, false, fmt.Errorf("%w: assignment: %v", errMalformedProtocol, err)
	}
	named := make(map[string][]int32)
	n := 0
	for _, t := range a.Topics {
		n += len(t.Partitions)
		if n > maxOwnedPartitions {
			return nil, false, fmt.Errorf("%w: assignment too large", errMalformedProtocol)
		}
		named[t.Topic] = append(named[t.Topic], t.Partitions...)
	}
	s, dropped := ix.parts(named)
	return s, dropped > 0, nil
}

// encodeAssignment writes s as a ConsumerProtocolAssignment of version
// (clamped to those Kafka knows, 0–3).
func (ix topicIndex) encodeAssignment(s partSet, version int16) []byte {
	a := kmsg.NewConsumerMemberAssignment()
	a.Version = min(max(version, 0), 3)
	for _, st := range encodeParts(s) {
		name, ok := ix.byID[decodeID(st.ID)]
		if !ok {
			continue
		}
		at := kmsg.NewConsumerMemberAssignmentTopic()
		at.Topic, at.Partitions = name, st.Partitions
		a.Topics = append(a.Topics, at)
	}
	return a.AppendTo(nil)
}

// upgradeLocked converts a classic group with members into a consumer
// group whose members speak the classic protocol, for a
// ConsumerGroupHeartbeat joining it. Nothing changes unless it answers 0;
// the caller saves.
func (g *group) upgradeLocked(topics []TopicInfo) (int16, string) {
	notConsumer := func(why string) (int16, string) {
		return kerr.GroupIDNotFound.Code, "Group " + g.id + " is not a consumer group: " + why
	}
	switch {
	case !g.c.migration.upgrades():
		return notConsumer("online upgrade is disabled (group.consumer.migration.policy)")
	case g.protocolType != consumerProtocolType:
		return notConsumer("it does not use the consumer embedded protocol")
	case len(g.members) > g.c.cMaxSize:
		return notConsumer("it has more members than group.consumer.max.size")
	case g.state != stateStable:
		return kerr.CoordinatorLoadInProgress.Code, "Group " + g.id + " is rebalancing; it converts to a consumer group once stable."
	}
	ix := indexTopics(topics)
	cg := newConsumerGroup()
	for _, id := range g.memberIDsLocked() {
		om := g.members[id]
		sub, err := decodeSubscription(om.metadataFor(g.protocol))
		if err != nil {
			return notConsumer(err.Error())
		}
		assigned, unknown, err := ix.decodeAssignment(om.assignment)
		if err != nil {
			return notConsumer(err.Error())
		}
		if unknown {
			// A member owns partitions the topic list does not show
			// (yet): converting would let the target hand them out
			// while it still consumes them. The joiner retries.
			return kerr.CoordinatorLoadInProgress.Code, "Group " + g.id + " has partitions assigned this coordinator does not know yet; retry."
		}
		m := &cmember{
			id: om.id, instanceID: om.instanceID, clientID: om.clientID, clientHost: om.clientHost,
			epoch: g.generation, prevEpoch: g.generation, state: memberStable,
			rebalanceTimeout: om.rebalance, topics: sub.topics,
			assigned: assigned, target: assigned.clone(),
			classic: &classicMember{session: om.session, protocols: om.protocols},
		}
		if sub.rack != nil {
			m.rackID = *sub.rack
		}
		cg.members[m.id] = m
		if m.instanceID != "" {
			cg.statics[m.instanceID] = m.id
		}
	}
	// Decoded: from here on the group is a consumer group.
	g.c.log.Info("converting classic group to a consumer group", "group", g.id, "generation", g.generation, "members", len(cg.members))
	for _, om := range g.members {
		if om.timer != nil {
			om.timer.Stop()
		}
		g.failWaitersLocked(om, kerr.RebalanceInProgress.Code)
	}
	for _, t := range g.pending {
		t.Stop()
	}
	if g.rebalance != nil {
		g.rebalance.Stop()
	}
	g.rebalanceSeq++
	g.members, g.statics = make(map[string]*member), make(map[string]string)
	g.pending, g.pendingOrder = make(map[string]*time.Timer), nil
	g.protocolType, g.protocol, g.leader, g.state = "", "", "", stateEmpty
	cg.subscribed = resolveSubscriptions(cg, topics)
	g.consumer = cg
	cg.assignor = g.preferredAssignorLocked()
	for _, m := range cg.members {
		g.touchLocked(m)
	}
	return 0, ""
}

// fenceConsumerMemberLocked removes m from a consumer group (it left, or
// missed a deadline): the group converts back to a classic group if m
// was the last member speaking the consumer protocol and the policy
// allows it; otherwise the group epoch moves on. The caller saves.
func (g *group) fenceConsumerMemberLocked(m *cmember) {
	if g.downgradableLocked(m) {
		g.downgradeLocked(m)
		return
	}
	g.removeConsumerMemberLocked(m)
}

// downgradableLocked is Kafka's validateOnlineDowngradeWithFencedMember.
func (g *group) downgradableLocked(leaving *cmember) bool {
	cg := g.consumer
	if leaving.classic != nil || len(cg.members) <= 1 || !g.c.migration.downgrades() {
		return false
	}
	for _, m := range cg.members {
		if m != leaving && m.classic == nil {
			return false
		}
	}
	return true
}

// downgradeLocked converts the consumer group, without leaving, into a
// classic group at the group epoch and starts a rebalance. The caller
// saves.
func (g *group) downgradeLocked(leaving *cmember) {
	cg := g.consumer
	ix := subscribedIndex(cg)
	g.c.log.Info("converting consumer group back to a classic group", "group", g.id, "generation", g.generation, "members", len(cg.members)-1)
	for _, m := range cg.members {
		if m.timer != nil {
			m.timer.Stop()
		}
	}
	g.consumer = nil
	g.members, g.statics = make(map[string]*member), make(map[string]string)
	for _, id := range cg.memberIDs() {
		cm := cg.members[id]
		if cm == leaving {
			continue
		}
		m := &member{
			id: cm.id, instanceID: cm.instanceID, clientID: cm.clientID, clientHost: cm.clientHost,
			session: cm.classic.session, rebalance: cm.rebalanceTimeout, protocols: cm.classic.protocols,
		}
		g.members[m.id] = m
		if m.instanceID != "" {
			g.statics[m.instanceID] = m.id
		}
	}
	g.protocolType, g.leader, g.state = consumerProtocolType, "", stateStable
	g.protocol = g.selectProtocolLocked()
	for id, m := range g.members {
		m.assignment = ix.encodeAssignment(cg.members[id].target, protocolVersion(m.metadataFor(g.protocol)))
		g.heartbeatLocked(m)
	}
	g.prepareRebalanceLocked()
}

// consumerTopics lists the cluster's topics if g is a consumer group,
// for a classic member's request, which names topics where the group
// keeps ids. It is read before the request takes g.mu, as
// ConsumerGroupHeartbeat reads it: nil if g is not a consumer group (the
// caller answers COORDINATOR_NOT_AVAILABLE, a retry, should g become one
// meanwhile) or the coordinator has no topic list.
func (c *Coordinator) consumerTopics(ctx context.Context, g *group) ([]TopicInfo, int16) {
	g.mu.Lock()
	consumer := g.consumer != nil
	g.mu.Unlock()
	if !consumer || c.topics == nil {
		return nil, 0
	}
	ts, err := c.topics(ctx)
	if err != nil {
		c.log.Warn("list topics for a classic member of a consumer group", "group", g.id, "err", err)
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	if ts == nil {
		ts = []TopicInfo{}
	}
	return ts, 0
}

// supportsClassicLocked reports whether a classic member (other than
// except) may join with protocolType and protos: the consumer embedded
// protocol, with a protocol every other classic member supports.
func (cg *consumerGroup) supportsClassicLocked(protocolType string, protos []metastore.GroupProtocol, except string) bool {
	if protocolType != consumerProtocolType || len(protos) == 0 {
		return false
	}
	for _, p := range protos {
		ok := true
		for id, m := range cg.members {
			if id != except && m.classic != nil && !hasProtocol(m.classic.protocols, p.Name) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// classicMemberLocked finds the classic member a SyncGroup, Heartbeat or
// LeaveGroup names (Kafka's validateConsumerGroupMember and
// throwIfMemberDoesNotUseClassicProtocol).
func (cg *consumerGroup) classicMemberLocked(memberID string, instanceID *string) (*cmember, int16) {
	var m *cmember
	if instanceID != nil && *instanceID != "" {
		id, ok := cg.statics[*instanceID]
		if !ok {
			return nil, kerr.UnknownMemberID.Code
		}
		if id != memberID {
			return nil, kerr.FencedInstanceID.Code
		}
		m = cg.members[id]
	} else {
		m = cg.members[memberID]
	}
	if m == nil || m.classic == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	return m, 0
}

// waitingOnUnreleased reports whether m waits for a partition of its
// target another member still has.
func (cg *consumerGroup) waitingOnUnreleased(m *cmember) bool {
	if m.state != memberUnreleased {
		return false
	}
	for p := range m.target {
		if _, ok := m.assigned[p]; ok {
			continue
		}
		if cg.ownedElsewhere(p, m) {
			return true
		}
	}
	return false
}

// joinConsumerLocked serves a classic member's JoinGroup to a consumer
// group with members (Kafka's classicGroupJoinToConsumerGroup). topics
// is nil when the coordinator has no topic list.
func (g *group) joinConsumerLocked(req *kmsg.JoinGroupRequest, protos []metastore.GroupProtocol, session, rebalance time.Duration, client Client, topics []TopicInfo) *kmsg.JoinGroupResponse {
	cg := g.consumer
	id := req.MemberID
	unknown := id == ""
	if unknown {
		id = newMemberID(client.ID)
	}
	fail := func(code int16) *kmsg.JoinGroupResponse { return joinError(req, req.MemberID, code) }
	instance := ""
	if req.InstanceID != nil {
		instance = *req.InstanceID
	}
	m, known := cg.members[id]
	_, staticKnown := cg.statics[instance]
	if !known && !(instance != "" && staticKnown) && len(cg.members) >= g.c.cMaxSize {
		return fail(kerr.GroupMaxSizeReached.Code)
	}
	if !cg.supportsClassicLocked(req.ProtocolType, protos, id) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	if unknown && instance == "" && req.Version >= 4 {
		return joinError(req, id, kerr.MemberIDRequired.Code)
	}
	sub, err := decodeSubscription(protos[0].Metadata)
	if err != nil {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	bump := false
	switch {
	case instance != "" && unknown && staticKnown:
		// The static member is back under a new member id: it takes its
		// previous incarnation's place and partitions, at epoch 0.
		old := cg.members[cg.statics[instance]]
		if old == nil {
			delete(cg.statics, instance)
			return fail(kerr.CoordinatorNotAvailable.Code)
		}
		g.dropConsumerMemberLocked(old)
		m = &cmember{
			id: id, instanceID: instance, state: old.state,
			assigned: old.assigned, revoking: old.revoking, target: old.target, revokeBy: old.revokeBy,
			topics: old.topics, regex: old.regex, re: old.re, assignor: old.assignor, rackID: old.rackID,
			classic: &classicMember{},
		}
		cg.members[id] = m
		cg.statics[instance] = id
		g.c.log.Info("static classic member of a consumer group rejoined", "group", g.id, "instance", instance, "member", id)
	case instance != "" && !unknown:
		cur, ok := cg.statics[instance]
		switch {
		case !ok:
			return fail(g.confirmLocked(kerr.UnknownMemberID.Code))
		case cur != id:
			return fail(g.confirmLocked(kerr.FencedInstanceID.Code))
		}
		m = cg.members[id]
		if m == nil || m.classic == nil {
			return fail(g.confirmLocked(kerr.UnknownMemberID.Code))
		}
	case known:
		if m.classic == nil || m.instanceID != instance {
			return fail(g.confirmLocked(kerr.UnknownMemberID.Code))
		}
	default:
		// A new member, or one a previous coordinator handed its id.
		m = &cmember{id: id, instanceID: instance, classic: &classicMember{}}
		cg.members[id] = m
		if instance != "" {
			cg.statics[instance] = id
		}
		bump = true
		g.c.log.Info("classic member joined a consumer group", "group", g.id, "member", id, "instance", instance)
	}

	m.clientID, m.clientHost = client.ID, client.Host
	m.classic.session, m.classic.protocols = session, protos
	m.rebalanceTimeout = rebalance
	if sub.rack != nil {
		m.rackID = *sub.rack
	}
	if !slices.Equal(sub.topics, m.topics) {
		m.topics = sub.topics
		bump = true
	}
	ix := indexTopics(topics).withSubscribed(cg)
	now := time.Now()
	if subs := resolveSubscriptions(cg, topics); bump || (topics != nil && !sameSubscribed(subs, cg.subscribed)) || g.preferredAssignorLocked() != cg.assignor {
		g.generation++
		g.computeTargetLocked(topics)
	}
	owned, _ := ix.parts(sub.owned)
	cg.reconcile(m, g.generation, owned, now)
	m.classic.joinBy = time.Time{}
	m.classic.syncBy = now.Add(rebalance)
	g.touchLocked(m)
	if !g.saveLocked() {
		return fail(kerr.NotCoordinator.Code)
	}
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	protocolType, protocol := consumerProtocolType, m.classic.protocolName()
	resp.MemberID = m.id
	resp.Generation = m.epoch
	resp.ProtocolType, resp.Protocol = &protocolType, &protocol
	return resp
}

// syncConsumerLocked serves a classic member's SyncGroup to a consumer
// group (Kafka's classicGroupSyncToConsumerGroup): its assigned
// partitions.
func (g *group) syncConsumerLocked(req *kmsg.SyncGroupRequest, topics []TopicInfo) *kmsg.SyncGroupResponse {
	cg := g.consumer
	m, code := cg.classicMemberLocked(req.MemberID, req.InstanceID)
	if code == 0 && req.Generation != m.epoch {
		code = kerr.IllegalGeneration.Code
	}
	if code != 0 {
		return syncError(req, g.confirmLocked(code))
	}
	protocol := m.classic.protocolName()
	if (req.ProtocolType != nil && *req.ProtocolType != consumerProtocolType) || (req.Protocol != nil && *req.Protocol != protocol) {
		return syncError(req, kerr.InconsistentGroupProtocol.Code)
	}
	if g.generation > m.epoch && m.state != memberUnrevoked {
		// A rebalance began since it joined: it rejoins to catch up.
		g.askRejoinLocked(m)
		return syncError(req, kerr.RebalanceInProgress.Code)
	}
	ix := indexTopics(topics).withSubscribed(cg)
	m.classic.syncBy = time.Time{}
	g.touchLocked(m)
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	protocolType := consumerProtocolType
	resp.ProtocolType, resp.Protocol = &protocolType, &protocol
	resp.MemberAssignment = ix.encodeAssignment(m.assigned, protocolVersion(m.classic.metadata()))
	return resp
}

// askRejoinLocked gives a classic member told to rejoin its rebalance
// timeout to do so, unless it was told already.
func (g *group) askRejoinLocked(m *cmember) {
	if m.classic.joinBy.IsZero() {
		m.classic.joinBy = time.Now().Add(m.rebalanceTimeout)
		g.armLocked(m)
	}
}

// heartbeatClassicLocked serves a classic member's Heartbeat to a
// consumer group (Kafka's classicGroupHeartbeatToConsumerGroup).
func (g *group) heartbeatClassicLocked(req *kmsg.HeartbeatRequest) int16 {
	cg := g.consumer
	m, code := cg.classicMemberLocked(req.MemberID, req.InstanceID)
	if code == 0 && req.Generation != m.epoch {
		code = kerr.IllegalGeneration.Code
	}
	if code != 0 {
		return g.confirmLocked(code)
	}
	g.touchLocked(m)
	if m.epoch < g.generation || m.state == memberUnrevoked || (m.state == memberUnreleased && !cg.waitingOnUnreleased(m)) {
		g.askRejoinLocked(m)
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// leaveClassicLocked removes the classic members a LeaveGroup names from
// a consumer group (Kafka's classicGroupLeaveToConsumerGroup): the group
// epoch moves on, once for them all.
func (g *group) leaveClassicLocked(req *kmsg.LeaveGroupRequest, resp *kmsg.LeaveGroupResponse) *kmsg.LeaveGroupResponse {
	cg := g.consumer
	type leaver struct{ memberID, instance string }
	var leavers []leaver
	if req.Version < 3 {
		leavers = append(leavers, leaver{memberID: req.MemberID})
	}
	for _, rm := range req.Members {
		l := leaver{memberID: rm.MemberID}
		if rm.InstanceID != nil {
			l.instance = *rm.InstanceID
		}
		leavers = append(leavers, l)
	}
	codes := make([]int16, len(leavers))
	removed := false
	for i, l := range leavers {
		var m *cmember
		if l.instance != "" {
			id, ok := cg.statics[l.instance]
			switch {
			case !ok:
				codes[i] = kerr.UnknownMemberID.Code
			case l.memberID != "" && l.memberID != id:
				codes[i] = kerr.FencedInstanceID.Code
			default:
				m = cg.members[id]
			}
		} else {
			m = cg.members[l.memberID]
		}
		if codes[i] == 0 && (m == nil || m.classic == nil) {
			codes[i] = kerr.UnknownMemberID.Code
		}
		if codes[i] != 0 {
			codes[i] = g.confirmLocked(codes[i])
			if g.unloaded {
				return leaveAnswer(req, resp, codes, kerr.NotCoordinator.Code)
			}
			continue
		}
		g.c.log.Info("classic member left a consumer group", "group", g.id, "member", m.id)
		if m.timer != nil {
			m.timer.Stop()
		}
		delete(cg.members, m.id)
		if m.instanceID != "" && cg.statics[m.instanceID] == m.id {
			delete(cg.statics, m.instanceID)
		}
		removed = true
	}
	if removed {
		g.generation++
		g.computeTargetLocked(nil)
		if !g.saveLocked() {
			return leaveAnswer(req, resp, codes, kerr.NotCoordinator.Code)
		}
	}
	return leaveAnswer(req, resp, codes, 0)
}

// leaveAnswer fills a LeaveGroup response: all answered with all when it
// is not 0.
func leaveAnswer(req *kmsg.LeaveGroupRequest, resp *kmsg.LeaveGroupResponse, codes []int16, all int16) *kmsg.LeaveGroupResponse {
	if all != 0 {
		resp.ErrorCode = all
		resp.Members = nil
		return resp
	}
	if req.Version < 3 {
		resp.ErrorCode = codes[0]
		return resp
	}
	for i, rm := range req.Members {
		out := kmsg.NewLeaveGroupResponseMember()
		out.MemberID, out.InstanceID = rm.MemberID, rm.InstanceID
		out.ErrorCode = codes[i]
		resp.Members = append(resp.Members, out)
	}
	return resp
}
