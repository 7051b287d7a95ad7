package group

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
)

type groupState int8

const (
	stateEmpty groupState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s groupState) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// group is one consumer group. Everything below mu is guarded by it.
type group struct {
	c  *Coordinator
	id string

	loadedAt time.Time // when this process loaded the group from the store

	mu           sync.Mutex
	unloaded     bool // dropped from the coordinator: callers answer NOT_COORDINATOR
	state        groupState
	generation   int32
	savedGen     int32 // the stored generation (0: never saved)
	epoch        int64 // this load's coordinator epoch (ClaimGroup): fences its saves and commits
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	statics      map[string]string      // group.instance.id → member id
	pending      map[string]*time.Timer // member ids given out with MEMBER_ID_REQUIRED
	pendingOrder []string               // the same ids, oldest first (may hold ids no longer pending)
	rebalance    *time.Timer
	rebalanceSeq uint64
	// consumer is set while the group is of type consumer (KIP-848);
	// the classic fields above other than generation stay empty then.
	consumer *consumerGroup
	// share is set while the group is of type share (KIP-932); the
	// classic fields other than generation stay empty then. At most one
	// of consumer and share is set.
	share *shareGroup
}

type member struct {
	id         string
	instanceID string
	clientID   string
	clientHost string
	session    time.Duration
	rebalance  time.Duration
	protocols  []metastore.GroupProtocol
	assignment []byte

	join     *joinWaiter // awaiting the end of the join phase
	sync     *syncWaiter // awaiting the leader's assignment
	deadline time.Time   // session expiry
	timer    *time.Timer
}

type joinWaiter struct {
	req *kmsg.JoinGroupRequest
	ch  chan kmsg.Response // buffered 1
}

type syncWaiter struct {
	req *kmsg.SyncGroupRequest
	ch  chan kmsg.Response // buffered 1
}

// restore installs the stored state. Members get a full session to find
// this coordinator and heartbeat. A group saved at the end of a join phase
// resumes completing that rebalance: its members hold the generation and
// wait for the leader's SyncGroup, which they now send here.
func (g *group) restore(s metastore.Group) {
	g.generation, g.savedGen = s.Generation, s.Generation
	switch s.Type {
	case metastore.GroupTypeConsumer:
		g.restoreConsumer(s)
		return
	case metastore.GroupTypeShare:
		g.restoreShare(s)
		return
	}
	g.protocolType, g.protocol, g.leader = s.ProtocolType, s.Protocol, s.Leader
	g.state = stateEmpty
	for _, sm := range s.Members {
		m := &member{
			id: sm.ID, instanceID: sm.InstanceID, clientID: sm.ClientID, clientHost: sm.ClientHost,
			session:   time.Duration(sm.SessionTimeoutMs) * time.Millisecond,
			rebalance: time.Duration(sm.RebalanceTimeoutMs) * time.Millisecond,
			protocols: sm.Protocols, assignment: sm.Assignment,
		}
		g.members[m.id] = m
		if m.instanceID != "" {
			g.statics[m.instanceID] = m.id
		}
		g.heartbeatLocked(m)
	}
	switch {
	case len(g.members) == 0:
	case s.State == stateCompletingRebalance.String():
		g.state = stateCompletingRebalance
	case s.State == statePreparingRebalance.String():
		// Saved so by a consumer group converting back (migration.go):
		// its members rejoin.
		g.state = stateStable
		g.prepareRebalanceLocked()
	default:
		g.state = stateStable
	}
}

// exists reports whether the group is more than a name someone asked about.
func (g *group) exists() bool {
	return g.savedGen > 0 || len(g.members) > 0 || g.state != stateEmpty
}

// unloadLocked drops the group from memory: timers stop and parked requests
// are answered NOT_COORDINATOR. The next request reloads it from the store.
func (g *group) unloadLocked() {
	if g.unloaded {
		return
	}
	g.unloaded = true
	if g.rebalance != nil {
		g.rebalance.Stop()
	}
	for _, t := range g.pending {
		t.Stop()
	}
	for _, m := range g.members {
		if m.timer != nil {
			m.timer.Stop()
		}
		g.failWaitersLocked(m, kerr.NotCoordinator.Code)
	}
	if g.consumer != nil {
		for _, m := range g.consumer.members {
			if m.timer != nil {
				m.timer.Stop()
			}
		}
	}
	if g.share != nil {
		for _, m := range g.share.members {
			if m.timer != nil {
				m.timer.Stop()
			}
		}
	}
	g.c.mu.Lock()
	if g.c.groups[g.id] == g {
		delete(g.c.groups, g.id)
	}
	g.c.mu.Unlock()
}

// failWaitersLocked answers m's parked requests with code.
func (g *group) failWaitersLocked(m *member, code int16) {
	if m.join != nil {
		m.join.ch <- joinError(m.join.req, m.id, code)
		m.join = nil
	}
	if m.sync != nil {
		m.sync.ch <- syncError(m.sync.req, code)
		m.sync = nil
	}
}

func joinError(req *kmsg.JoinGroupRequest, memberID string, code int16) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode = code
	resp.Generation = -1
	resp.MemberID = memberID
	return resp
}

func syncError(req *kmsg.SyncGroupRequest, code int16) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ErrorCode = code
	return resp
}

// save stores the group as it is now, from the generation last saved. On
// failure the group is unloaded: the store holds the last good state, and
// a stale generation means another agent moved the group on.
func (g *group) saveLocked() bool {
	if g.consumer != nil {
		return g.storeLocked(g.consumerRecordLocked())
	}
	if g.share != nil {
		return g.storeLocked(g.shareRecordLocked())
	}
	sg := metastore.Group{
		ID: g.id, Generation: g.generation, ProtocolType: g.protocolType,
		Protocol: g.protocol, Leader: g.leader, State: g.state.String(),
	}
	for _, id := range g.memberIDsLocked() {
		m := g.members[id]
		sg.Members = append(sg.Members, metastore.GroupMember{
			ID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			SessionTimeoutMs: int32(m.session / time.Millisecond), RebalanceTimeoutMs: int32(m.rebalance / time.Millisecond),
			Protocols: m.protocols, Assignment: m.assignment,
		})
	}
	return g.storeLocked(sg)
}

// storeLocked saves sg from the generation last saved; see saveLocked.
func (g *group) storeLocked(sg metastore.Group) bool {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	sg.Epoch = g.epoch
	if err := g.c.store.SaveGroup(ctx, sg, g.savedGen); err != nil {
		if errors.Is(err, metastore.ErrStaleGeneration) || errors.Is(err, metastore.ErrCoordinatorMoved) {
			g.c.log.Warn("group moved on in the store; another agent coordinates it", "group", g.id, "generation", g.generation, "err", err)
		} else {
			g.c.log.Warn("save group failed; unloading it", "group", g.id, "err", err)
		}
		g.unloadLocked()
		return false
	}
	g.savedGen = g.generation
	return true
}

// confirmLocked vets code before a member is told it: UNKNOWN_MEMBER_ID,
// ILLEGAL_GENERATION and FENCED_INSTANCE_ID are only as good as this
// process's memory of the group. If the store holds another generation
// than the one this process last saved or loaded, another agent
// coordinated the group meanwhile (placement moved and came back, or two
// agents briefly disagreed): the group is unloaded and the member told
// NOT_COORDINATOR, so its retry meets the group as stored. Other codes
// pass unchanged.
func (g *group) confirmLocked(code int16) int16 {
	switch code {
	case kerr.UnknownMemberID.Code, kerr.IllegalGeneration.Code, kerr.FencedInstanceID.Code:
	default:
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	stored, ok, err := g.c.store.Group(ctx, g.id)
	switch {
	case err != nil:
		g.c.log.Warn("load group to confirm an answer", "group", g.id, "err", err)
		return kerr.CoordinatorNotAvailable.Code
	case ok && stored.Generation != g.savedGen, !ok && g.savedGen != 0:
		g.movedOnLocked()
		return kerr.NotCoordinator.Code
	}
	return code
}

// movedOnLocked unloads a group the store shows another agent moved on.
func (g *group) movedOnLocked() {
	g.c.log.Warn("group moved on in the store; another agent coordinated it", "group", g.id, "generation", g.generation)
	g.unloadLocked()
}

func (g *group) memberIDsLocked() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// newMemberID is Kafka's shape: the client id, a dash, a random suffix.
func newMemberID(clientID string) string {
	var b [16]byte
	rand.Read(b[:])
	return clientID + "-" + hex.EncodeToString(b[:])
}

// heartbeatLocked extends m's session.
func (g *group) heartbeatLocked(m *member) {
	m.deadline = time.Now().Add(m.session)
	if m.timer == nil {
		m.timer = time.AfterFunc(m.session, func() { g.expire(m) })
		return
	}
	m.timer.Reset(m.session)
}

// expire removes m if its session lapsed. Members with a parked JoinGroup or
// SyncGroup are alive by definition.
func (g *group) expire(m *member) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.unloaded || g.members[m.id] != m {
		return
	}
	if m.join != nil || m.sync != nil {
		m.timer.Reset(m.session)
		return
	}
	if d := time.Until(m.deadline); d > 0 {
		m.timer.Reset(d)
		return
	}
	g.c.log.Info("group member session expired", "group", g.id, "member", m.id)
	g.removeMemberLocked(m, kerr.UnknownMemberID.Code)
}

// maxPendingMembers bounds the member ids a group holds for joiners that
// have not come back yet: each JoinGroup without a member id creates one,
// kept for a session timeout (up to 30 minutes), so a client looping on
// JoinGroup could otherwise grow the group's memory without end. A real
// joiner comes back within milliseconds; past the bound the oldest
// unclaimed id is forgotten (its owner, if any, gets UNKNOWN_MEMBER_ID and
// joins again).
const maxPendingMembers = 1000

// addPendingLocked remembers a member id given out with MEMBER_ID_REQUIRED
// for one session timeout.
func (g *group) addPendingLocked(id string, session time.Duration) {
	for len(g.pending) >= maxPendingMembers && len(g.pendingOrder) > 0 {
		old := g.pendingOrder[0]
		g.pendingOrder = g.pendingOrder[1:]
		if t, ok := g.pending[old]; ok {
			t.Stop()
			delete(g.pending, old)
		}
	}
	if len(g.pendingOrder) > 2*maxPendingMembers { // drop ids claimed or expired since
		live := g.pendingOrder[:0]
		for _, p := range g.pendingOrder {
			if _, ok := g.pending[p]; ok {
				live = append(live, p)
			}
		}
		g.pendingOrder = live
	}
	g.pendingOrder = append(g.pendingOrder, id)
	g.pending[id] = time.AfterFunc(session, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.unloaded {
			return
		}
		if _, ok := g.pending[id]; ok {
			delete(g.pending, id)
			g.maybeCompleteJoinLocked()
		}
	})
}

// removeMemberLocked drops m, answering its parked requests with code, and
// rebalances the rest.
func (g *group) removeMemberLocked(m *member, code int16) {
	if m.timer != nil {
		m.timer.Stop()
	}
	g.failWaitersLocked(m, code)
	delete(g.members, m.id)
	if m.instanceID != "" && g.statics[m.instanceID] == m.id {
		delete(g.statics, m.instanceID)
	}
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalanceLocked()
	case statePreparingRebalance:
		g.maybeCompleteJoinLocked()
	}
}

// prepareRebalanceLocked starts a join phase: members have until the
// longest rebalance timeout to rejoin.
func (g *group) prepareRebalanceLocked() {
	if g.state == stateCompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			if m.sync != nil {
				m.sync.ch <- syncError(m.sync.req, kerr.RebalanceInProgress.Code)
				m.sync = nil
			}
		}
	}
	g.state = statePreparingRebalance
	g.rebalanceSeq++
	seq := g.rebalanceSeq
	var timeout time.Duration
	for _, m := range g.members {
		timeout = max(timeout, m.rebalance)
	}
	if g.rebalance != nil {
		g.rebalance.Stop()
	}
	g.rebalance = time.AfterFunc(timeout, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if !g.unloaded && g.rebalanceSeq == seq && g.state == statePreparingRebalance {
			g.completeJoinLocked()
		}
	})
	g.maybeCompleteJoinLocked()
}

// maybeCompleteJoinLocked ends the join phase once every member has
// rejoined and no member id handed out is still unclaimed.
func (g *group) maybeCompleteJoinLocked() {
	if g.state != statePreparingRebalance || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	g.completeJoinLocked()
}

// completeJoinLocked ends the join phase: members that did not rejoin are
// dropped, the generation moves on, a protocol and leader are chosen and
// every joined member is answered (the leader with everyone's metadata).
func (g *group) completeJoinLocked() {
	if g.rebalance != nil {
		g.rebalance.Stop()
	}
	g.rebalanceSeq++
	for _, m := range g.members {
		if m.join == nil {
			g.c.log.Info("group member did not rejoin in time", "group", g.id, "member", m.id)
			if m.timer != nil {
				m.timer.Stop()
			}
			g.failWaitersLocked(m, kerr.UnknownMemberID.Code)
			delete(g.members, m.id)
			if m.instanceID != "" && g.statics[m.instanceID] == m.id {
				delete(g.statics, m.instanceID)
			}
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.state, g.protocol, g.leader = stateEmpty, "", ""
		g.saveLocked()
		return
	}
	g.protocol = g.selectProtocolLocked()
	ids := g.memberIDsLocked()
	if _, ok := g.members[g.leader]; !ok {
		g.leader = ids[0]
	}
	g.state = stateCompletingRebalance
	for _, m := range g.members {
		m.assignment = nil
	}
	// Saved before any member hears of the generation, so whichever agent
	// coordinates the group next knows every member and generation a
	// client holds. A failed save unloads the group, answering the joins
	// NOT_COORDINATOR.
	if !g.saveLocked() {
		return
	}
	for _, id := range ids {
		m := g.members[id]
		m.join.ch <- g.joinResponseLocked(m, m.join.req)
		m.join = nil
		g.heartbeatLocked(m)
	}
}

// joinResponseLocked answers a member with the current generation; the
// leader also gets every member's metadata for the chosen protocol.
func (g *group) joinResponseLocked(m *member, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = g.generation
	resp.ProtocolType = &g.protocolType
	resp.Protocol = &g.protocol
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	if m.id == g.leader {
		for _, id := range g.memberIDsLocked() {
			o := g.members[id]
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID = o.id
			if o.instanceID != "" {
				rm.InstanceID = &o.instanceID
			}
			rm.ProtocolMetadata = o.metadataFor(g.protocol)
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// selectProtocolLocked picks, among the protocols every member supports,
// the one most members prefer (ties: the earliest in the leader's, then
// the first member's, preference order).
func (g *group) selectProtocolLocked() string {
	cands := g.candidatesLocked()
	votes := make(map[string]int)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if slices.Contains(cands, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range cands {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

// candidatesLocked lists the protocols every member supports, in the
// preference order of the leader (or, without one, the first member).
func (g *group) candidatesLocked() []string {
	var order []metastore.GroupProtocol
	if l, ok := g.members[g.leader]; ok {
		order = l.protocols
	} else if ids := g.memberIDsLocked(); len(ids) > 0 {
		order = g.members[ids[0]].protocols
	}
	var out []string
	for _, p := range order {
		ok := true
		for _, m := range g.members {
			ok = ok && hasProtocol(m.protocols, p.Name)
		}
		if ok {
			out = append(out, p.Name)
		}
	}
	return out
}

// supportsLocked reports whether a member (other than except) joining with
// protocolType and protos can be in the group: an empty group takes any
// member; otherwise the type must match and one of protos must be
// supported by every other member.
func (g *group) supportsLocked(protocolType string, protos []metastore.GroupProtocol, except string) bool {
	others := 0
	for id := range g.members {
		if id != except {
			others++
		}
	}
	if others == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protos {
		ok := true
		for id, m := range g.members {
			ok = ok && (id == except || hasProtocol(m.protocols, p.Name))
		}
		if ok {
			return true
		}
	}
	return false
}

func hasProtocol(ps []metastore.GroupProtocol, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

func sameProtocols(a, b []metastore.GroupProtocol) bool {
	return slices.EqualFunc(a, b, func(x, y metastore.GroupProtocol) bool {
		return x.Name == y.Name && string(x.Metadata) == string(y.Metadata)
	})
}
