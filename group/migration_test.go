package group

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
)

// These tests migrate a group between the classic protocol and KIP-848's
// online, over a real SQLite store: classic members (ccMember, a
// cooperative consumer's behaviour) and consumer-protocol members
// (cgMember) side by side, checking after every step that no partition
// has two owners.

// ccMember is a classic consumer's view of its group: the embedded
// consumer protocol, a cooperative client (it reports what it owns when
// it joins, and gives up what a new assignment lacks at once).
type ccMember struct {
	t          *testing.T
	c          *Coordinator
	id         string
	instance   string // group.instance.id; "" for a dynamic member
	generation int32
	owned      []int32 // partitions of topic
	metadata   []byte  // nil: metadata() of what it owns
}

func newCCMember(t *testing.T, c *Coordinator) *ccMember { return &ccMember{t: t, c: c} }

func (m *ccMember) joinRequest() *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 9
	req.Group, req.MemberID = groupID, m.id
	if m.instance != "" {
		req.InstanceID = &m.instance
	}
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
	req.ProtocolType = "consumer"
	md := m.metadata
	if md == nil {
		cm := kmsg.NewConsumerMemberMetadata()
		cm.Version = 1
		cm.Topics = []string{topic}
		if len(m.owned) > 0 {
			o := kmsg.NewConsumerMemberMetadataOwnedPartition()
			o.Topic, o.Partitions = topic, m.owned
			cm.OwnedPartitions = append(cm.OwnedPartitions, o)
		}
		md = cm.AppendTo(nil)
	}
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "cooperative-sticky", md
	req.Protocols = append(req.Protocols, p)
	return req
}

// join sends JoinGroup (twice for a new member: MEMBER_ID_REQUIRED) and
// returns where the answer comes.
func (m *ccMember) join() <-chan kmsg.Response {
	m.t.Helper()
	resp, parked := m.c.JoinGroup(context.Background(), m.joinRequest(), Client{ID: "classic", Host: "/127.0.0.1"})
	if parked == nil && resp.ErrorCode == kerr.MemberIDRequired.Code {
		m.id = resp.MemberID
		resp, parked = m.c.JoinGroup(context.Background(), m.joinRequest(), Client{ID: "classic", Host: "/127.0.0.1"})
	}
	return answered(resp, parked)
}

// joined adopts a join answer; it returns its error code.
func (m *ccMember) joined(r kmsg.Response) int16 {
	resp := r.(*kmsg.JoinGroupResponse)
	if resp.ErrorCode == 0 {
		m.id, m.generation = resp.MemberID, resp.Generation
	}
	return resp.ErrorCode
}

// sync sends SyncGroup (the leader with plan) and returns where the
// answer comes.
func (m *ccMember) sync(plan map[string][]int32) <-chan kmsg.Response {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = groupID, m.id, m.generation
	pt, pn := "consumer", "cooperative-sticky"
	req.ProtocolType, req.Protocol = &pt, &pn
	for id, ps := range plan {
		as := kmsg.NewSyncGroupRequestGroupAssignment()
		as.MemberID, as.MemberAssignment = id, assignmentOf(ps)
		req.GroupAssignment = append(req.GroupAssignment, as)
	}
	resp, parked := m.c.SyncGroup(context.Background(), req)
	return answered(resp, parked)
}

// synced adopts a sync answer: it owns its assignment now.
func (m *ccMember) synced(r kmsg.Response) int16 {
	m.t.Helper()
	resp := r.(*kmsg.SyncGroupResponse)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(resp.MemberAssignment); err != nil {
		m.t.Fatalf("member %s: assignment does not decode: %v", m.id, err)
	}
	m.owned = nil
	for _, t := range a.Topics {
		if t.Topic != topic {
			m.t.Fatalf("member %s assigned topic %q", m.id, t.Topic)
		}
		m.owned = append(m.owned, t.Partitions...)
	}
	slices.Sort(m.owned)
	return 0
}

func (m *ccMember) heartbeat() int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation = groupID, m.id, m.generation
	if m.instance != "" {
		req.InstanceID = &m.instance
	}
	return m.c.Heartbeat(context.Background(), req).ErrorCode
}

// step is one round of a classic client: heartbeat and, when told to,
// rejoin and sync at once (the consumer group answers both without
// parking). Answers other than these fail the test.
func (m *ccMember) step() {
	m.t.Helper()
	code := m.heartbeat()
	switch code {
	case 0:
		return
	case kerr.RebalanceInProgress.Code:
	default:
		m.t.Fatalf("classic member %s heartbeat: %v", m.id, kerr.ErrorForCode(code))
	}
	if code := m.joined(recv(m.t, m.join())); code != 0 {
		m.t.Fatalf("classic member %s rejoin: %v", m.id, kerr.ErrorForCode(code))
	}
	if code := m.synced(recv(m.t, m.sync(nil))); code != 0 && code != kerr.RebalanceInProgress.Code {
		m.t.Fatalf("classic member %s sync: %v", m.id, kerr.ErrorForCode(code))
	}
}

func (m *ccMember) commit(generation int32) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.MemberID, req.Generation = groupID, m.id, generation
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 7
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return m.c.OffsetCommit(context.Background(), req).Topics[0].Partitions[0].ErrorCode
}

func assignmentOf(ps []int32) []byte {
	a := kmsg.NewConsumerMemberAssignment()
	a.Version = 1
	if len(ps) > 0 {
		at := kmsg.NewConsumerMemberAssignmentTopic()
		at.Topic, at.Partitions = topic, ps
		a.Topics = append(a.Topics, at)
	}
	return a.AppendTo(nil)
}

func span(from, to int32) []int32 {
	var out []int32
	for p := from; p < to; p++ {
		out = append(out, p)
	}
	return out
}

// classicStable brings two classic members through a rebalance in which
// the first is given partitions 0–5 and the second 6–11.
func classicStable(t *testing.T, a, b *ccMember) {
	t.Helper()
	for _, m := range []*ccMember{a, b} { // both ids first, so one join phase takes both
		resp, _ := m.c.JoinGroup(context.Background(), m.joinRequest(), Client{ID: "classic"})
		if resp == nil || resp.ErrorCode != kerr.MemberIDRequired.Code {
			t.Fatalf("first join: %+v", resp)
		}
		m.id = resp.MemberID
	}
	ja, jb := a.join(), b.join()
	if code := a.joined(recv(t, ja)); code != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(code))
	}
	if code := b.joined(recv(t, jb)); code != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(code))
	}
	plan := map[string][]int32{a.id: span(0, 6), b.id: span(6, 12)}
	sa, sb := a.sync(plan), b.sync(plan)
	if code := a.synced(recv(t, sa)); code != 0 {
		t.Fatalf("sync: %v", kerr.ErrorForCode(code))
	}
	if code := b.synced(recv(t, sb)); code != 0 {
		t.Fatalf("sync: %v", kerr.ErrorForCode(code))
	}
}

// checkOwners fails if two members, of either protocol, own one
// partition.
func checkOwners(t *testing.T, classic []*ccMember, consumer []*cgMember) {
	t.Helper()
	owner := map[int32]string{}
	own := func(who string, p int32) {
		if o, ok := owner[p]; ok {
			t.Fatalf("partition %d owned by %s and %s", p, o, who)
		}
		owner[p] = who
	}
	for _, m := range classic {
		for _, p := range m.owned {
			own(m.id, p)
		}
	}
	for _, m := range consumer {
		for _, p := range m.owned[cgTopicID] {
			own(m.id, p)
		}
	}
}

// converge steps every member round-robin, checking owners after every
// step, until the consumer group is Stable with want partitions each.
func converge(t *testing.T, c *Coordinator, classic []*ccMember, consumer []*cgMember, want int) {
	t.Helper()
	for range 30 {
		for _, m := range classic {
			m.step()
			checkOwners(t, classic, consumer)
		}
		for _, m := range consumer {
			m.heartbeat()
			checkOwners(t, classic, consumer)
		}
		g := c.loaded(groupID)
		if g == nil {
			continue
		}
		g.mu.Lock()
		stable := g.consumer != nil && g.consumer.stateName(g.generation) == "Stable"
		g.mu.Unlock()
		even := true
		for _, m := range classic {
			even = even && len(m.owned) == want
		}
		for _, m := range consumer {
			even = even && m.count() == want
		}
		if stable && even {
			return
		}
	}
	t.Fatal("group did not converge in 30 rounds")
}

func groupType(t *testing.T, c *Coordinator) (consumer bool, state string, generation int32) {
	t.Helper()
	g := c.loaded(groupID)
	if g == nil {
		t.Fatal("group not loaded")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.consumer != nil {
		return true, g.consumer.stateName(g.generation), g.generation
	}
	return false, g.state.String(), g.generation
}

func migrationFixture(t *testing.T, policy MigrationPolicy) (*fixture, *Coordinator) {
	f := newFixture(t)
	ts := &cgTopics{list: []TopicInfo{{Name: topic, ID: cgTopicID, Partitions: 12}}}
	c := f.coordinator(func(cfg *Config) { cfg.Topics, cfg.MigrationPolicy = ts.get, policy })
	f.partitions12(c)
	return f, c
}

// TestOnlineUpgradeAndDowngrade: a stable classic group of two members
// becomes a consumer group when a ConsumerGroupHeartbeat joins; the
// classic members keep their partitions and rebalance through
// JoinGroup/SyncGroup/Heartbeat toward an even split, never sharing a
// partition; when the consumer-protocol member leaves, the group is
// classic again and its members rejoin.
func TestOnlineUpgradeAndDowngrade(t *testing.T) {
	f, c := migrationFixture(t, "")
	a, b := newCCMember(t, c), newCCMember(t, c)
	classicStable(t, a, b)
	if a.generation != 1 {
		t.Fatalf("classic generation %d, want 1", a.generation)
	}

	x := newCGMember(t, c, "x")
	x.heartbeat()
	consumer, _, epoch := groupType(t, c)
	if !consumer || epoch != 2 || x.epoch != 2 || x.count() != 0 {
		t.Fatalf("after the join: consumer group %v at epoch %d; joiner at %d owning %d", consumer, epoch, x.epoch, x.count())
	}
	// Saved before the answer: the store holds the consumer group with
	// all three members.
	stored, ok, err := f.store.Group(context.Background(), groupID)
	if err != nil || !ok || stored.Type != metastore.GroupTypeConsumer || stored.Generation != 2 || len(stored.Members) != 3 {
		t.Fatalf("stored group: %+v, %v, %v", stored, ok, err)
	}

	// The classic members kept their partitions and generation; they
	// commit with it, and an older one is ILLEGAL_GENERATION.
	if code := a.commit(1); code != 0 {
		t.Fatalf("classic member's commit at its generation: %v", kerr.ErrorForCode(code))
	}
	if code := a.commit(0); code != kerr.IllegalGeneration.Code {
		t.Fatalf("classic member's commit at an old generation: %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(code))
	}
	// Behind the group epoch: they are told to rejoin.
	if code := a.heartbeat(); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("classic member's heartbeat behind the group epoch: %v, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(code))
	}
	converge(t, c, []*ccMember{a, b}, []*cgMember{x}, 4)

	// ConsumerGroupDescribe shows the member types; ListGroups a
	// consumer group.
	dreq := kmsg.NewPtrConsumerGroupDescribeRequest()
	dreq.SetVersion(1)
	dreq.Groups = []string{groupID}
	dg := c.ConsumerGroupDescribe(context.Background(), dreq).Groups[0]
	types := map[string]int8{}
	for _, m := range dg.Members {
		types[m.MemberID] = m.MemberType
		if len(m.SubscribedTopics) != 1 || m.SubscribedTopics[0] != topic {
			t.Fatalf("member %s subscribes to %v", m.MemberID, m.SubscribedTopics)
		}
	}
	if dg.ErrorCode != 0 || dg.State != "Stable" || types[a.id] != 0 || types[b.id] != 0 || types[x.id] != 1 {
		t.Fatalf("ConsumerGroupDescribe: %v %s, member types %v", kerr.ErrorForCode(dg.ErrorCode), dg.State, types)
	}
	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.SetVersion(5)
	lg := c.ListGroups(context.Background(), lreq).Groups
	if len(lg) != 1 || lg[0].GroupType != "consumer" || lg[0].ProtocolType != "consumer" {
		t.Fatalf("ListGroups: %+v", lg)
	}
	if code := a.commit(a.generation); code != 0 {
		t.Fatalf("classic member's commit at its member epoch: %v", kerr.ErrorForCode(code))
	}

	// The consumer-protocol member leaves: the group is classic again,
	// rebalancing; the store says so too.
	leave := x.request()
	leave.MemberEpoch = -1
	if resp := x.send(leave); resp.ErrorCode != 0 {
		t.Fatalf("leave: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	x.owned = nil
	consumer, state, gen := groupType(t, c)
	if consumer || state != "PreparingRebalance" {
		t.Fatalf("after the last consumer-protocol member left: consumer %v, state %s", consumer, state)
	}
	stored, _, _ = f.store.Group(context.Background(), groupID)
	if stored.TypeName() != metastore.GroupTypeClassic || stored.State != "PreparingRebalance" || len(stored.Members) != 2 {
		t.Fatalf("stored after the downgrade: %+v", stored)
	}
	for _, m := range []*ccMember{a, b} {
		if code := m.heartbeat(); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("classic member %s heartbeat after the downgrade: %v, want REBALANCE_IN_PROGRESS", m.id, kerr.ErrorForCode(code))
		}
	}
	ja, jb := a.join(), b.join()
	a.joined(recv(t, ja))
	b.joined(recv(t, jb))
	if a.generation != gen+1 || b.generation != gen+1 {
		t.Fatalf("classic rebalance after the downgrade: generations %d, %d, want %d", a.generation, b.generation, gen+1)
	}
}

// TestMigrationPolicy: "disabled" refuses the upgrade as Kafka does
// (GROUP_ID_NOT_FOUND, the group stays classic); "upgrade" converts but
// does not convert back when the consumer-protocol member leaves.
func TestMigrationPolicy(t *testing.T) {
	if _, err := ParseMigrationPolicy("sideways"); err == nil {
		t.Fatal("ParseMigrationPolicy accepted an unknown policy")
	}
	if p, err := ParseMigrationPolicy("Upgrade"); err != nil || p != MigrationUpgrade {
		t.Fatalf("ParseMigrationPolicy(Upgrade) = %q, %v", p, err)
	}

	_, c := migrationFixture(t, MigrationDisabled)
	a, b := newCCMember(t, c), newCCMember(t, c)
	classicStable(t, a, b)
	x := newCGMember(t, c, "x")
	if resp := x.send(x.request()); resp.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("heartbeat to a classic group, policy disabled: %v, want GROUP_ID_NOT_FOUND", kerr.ErrorForCode(resp.ErrorCode))
	}
	if consumer, state, _ := groupType(t, c); consumer || state != "Stable" {
		t.Fatalf("after a refused upgrade: consumer %v, %s", consumer, state)
	}
	if code := a.heartbeat(); code != 0 {
		t.Fatalf("classic member after a refused upgrade: %v", kerr.ErrorForCode(code))
	}

	_, c = migrationFixture(t, MigrationUpgrade)
	a, b = newCCMember(t, c), newCCMember(t, c)
	classicStable(t, a, b)
	x = newCGMember(t, c, "x")
	x.heartbeat()
	converge(t, c, []*ccMember{a, b}, []*cgMember{x}, 4)
	leave := x.request()
	leave.MemberEpoch = -1
	if resp := x.send(leave); resp.ErrorCode != 0 {
		t.Fatalf("leave: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	x.owned = nil
	if consumer, _, _ := groupType(t, c); !consumer {
		t.Fatal("policy upgrade: the group converted back to classic")
	}
	converge(t, c, []*ccMember{a, b}, nil, 6)
}

// TestUpgradeConditions: a classic group converts only when it uses the
// consumer embedded protocol and is stable; malformed metadata is
// refused, never trusted.
func TestUpgradeConditions(t *testing.T) {
	_, c := migrationFixture(t, "")
	a, b := newCCMember(t, c), newCCMember(t, c)
	classicStable(t, a, b)
	// b rejoins with new metadata: the group rebalances.
	b.owned = []int32{6}
	jb := b.join()
	x := newCGMember(t, c, "x")
	if resp := x.send(x.request()); resp.ErrorCode != kerr.CoordinatorLoadInProgress.Code {
		t.Fatalf("heartbeat to a rebalancing classic group: %v, want COORDINATOR_LOAD_IN_PROGRESS", kerr.ErrorForCode(resp.ErrorCode))
	}
	ja := a.join()
	a.joined(recv(t, ja))
	b.joined(recv(t, jb))

	// Another protocol type: never converted.
	_, c = migrationFixture(t, "")
	o := newJoiner(c)
	req := o.joinRequest()
	req.ProtocolType = "connect"
	resp, parked := c.JoinGroup(context.Background(), req, Client{ID: "connect"})
	o.id = resp.MemberID
	req.MemberID = o.id
	resp, parked = c.JoinGroup(context.Background(), req, Client{ID: "connect"})
	o.joined(t, recv(t, answered(resp, parked)))
	if code := syncedAssignmentCode(recv(t, o.sync(t, map[string]string{o.id: "x"}))); code != 0 {
		t.Fatalf("connect sync: %v", kerr.ErrorForCode(code))
	}
	x = newCGMember(t, c, "x")
	if resp := x.send(x.request()); resp.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("heartbeat to a connect group: %v, want GROUP_ID_NOT_FOUND", kerr.ErrorForCode(resp.ErrorCode))
	}

	// Malformed subscription or assignment: refused.
	for _, bad := range []struct {
		name           string
		metadata, plan []byte
	}{
		{"metadata", []byte{0, 1, 0x7f, 0xff, 0xff, 0xff}, assignmentOf(span(0, 12))},
		{"assignment", nil, []byte{0, 1, 0x7f, 0xff, 0xff, 0xff, 1}},
	} {
		_, c = migrationFixture(t, "")
		m := newCCMember(t, c)
		m.metadata = bad.metadata
		m.joined(recv(t, m.join()))
		req := kmsg.NewPtrSyncGroupRequest()
		req.Version = 5
		req.Group, req.MemberID, req.Generation = groupID, m.id, m.generation
		as := kmsg.NewSyncGroupRequestGroupAssignment()
		as.MemberID, as.MemberAssignment = m.id, bad.plan
		req.GroupAssignment = append(req.GroupAssignment, as)
		sresp, sparked := c.SyncGroup(context.Background(), req)
		if code := syncedAssignmentCode(recv(t, answered(sresp, sparked))); code != 0 {
			t.Fatalf("%s: sync: %v", bad.name, kerr.ErrorForCode(code))
		}
		x = newCGMember(t, c, "x")
		if resp := x.send(x.request()); resp.ErrorCode != kerr.GroupIDNotFound.Code {
			t.Fatalf("malformed %s: heartbeat %v, want GROUP_ID_NOT_FOUND", bad.name, kerr.ErrorForCode(resp.ErrorCode))
		}
		if code := m.heartbeat(); code != 0 {
			t.Fatalf("malformed %s: the classic member after the refused upgrade: %v", bad.name, kerr.ErrorForCode(code))
		}
	}
}

func syncedAssignmentCode(r kmsg.Response) int16 { return r.(*kmsg.SyncGroupResponse).ErrorCode }

// TestClassicJoinToConsumerGroup: a classic consumer joins a consumer
// group with members (MEMBER_ID_REQUIRED first, then a member that
// speaks the classic protocol); its malformed metadata or another
// protocol type is refused.
func TestClassicJoinToConsumerGroup(t *testing.T) {
	_, c := migrationFixture(t, "")
	x := newCGMember(t, c, "x")
	x.heartbeat()
	if x.count() != 12 {
		t.Fatalf("the first member owns %d partitions", x.count())
	}
	bad := newCCMember(t, c)
	bad.metadata = []byte{0xff}
	bad.id = "bad"
	if code := bad.joined(recv(t, bad.join())); code != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("malformed metadata: %v, want INCONSISTENT_GROUP_PROTOCOL", kerr.ErrorForCode(code))
	}
	a := newCCMember(t, c)
	first, _ := c.JoinGroup(context.Background(), a.joinRequest(), Client{ID: "classic"})
	if first == nil || first.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("new classic member's first join: %+v", first)
	}
	a.id = first.MemberID
	if code := a.joined(recv(t, a.join())); code != 0 {
		t.Fatalf("classic join to a consumer group: %v", kerr.ErrorForCode(code))
	}
	if code := a.synced(recv(t, a.sync(nil))); code != 0 {
		t.Fatalf("classic sync: %v", kerr.ErrorForCode(code))
	}
	if len(a.owned) != 0 {
		t.Fatalf("the classic member got %v while x still owns everything", a.owned)
	}
	converge(t, c, []*ccMember{a}, []*cgMember{x}, 6)
	// A classic LeaveGroup: x takes everything again.
	lreq := kmsg.NewPtrLeaveGroupRequest()
	lreq.SetVersion(5)
	lreq.Group = groupID
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = a.id
	lreq.Members = append(lreq.Members, lm)
	lresp := c.LeaveGroup(context.Background(), lreq)
	if lresp.ErrorCode != 0 || len(lresp.Members) != 1 || lresp.Members[0].ErrorCode != 0 {
		t.Fatalf("classic leave: %+v", lresp)
	}
	a.owned = nil
	converge(t, c, nil, []*cgMember{x}, 12)
	if consumer, _, _ := groupType(t, c); !consumer {
		t.Fatal("a consumer group whose classic member left became classic")
	}
}

// TestMoveDuringMigration: the group moves to another coordinator right
// after the upgrade and again after the downgrade. The new coordinator
// resumes each from the store: classic members of the consumer group
// keep their generation and reconcile there; after the downgrade the
// classic group's rebalance starts again there.
func TestMoveDuringMigration(t *testing.T) {
	f := newFixture(t)
	ts := &cgTopics{list: []TopicInfo{{Name: topic, ID: cgTopicID, Partitions: 12}}}
	onA, onB := new(atomic.Bool), new(atomic.Bool)
	onA.Store(true)
	mk := func(on *atomic.Bool) *Coordinator {
		c := f.coordinator(func(cfg *Config) {
			cfg.Topics = ts.get
			cfg.IsCoordinator = func(string) bool { return on.Load() }
		})
		f.partitions12(c)
		return c
	}
	ca, cb := mk(onA), mk(onB)
	a, b := newCCMember(t, ca), newCCMember(t, ca)
	classicStable(t, a, b)
	x := newCGMember(t, ca, "x")
	x.heartbeat()

	move(ca, onA, onB)
	a.c, b.c, x.c = cb, cb, cb
	// On the new coordinator the classic members hold their
	// generation: a commit is taken, a heartbeat says rejoin.
	allowed(t, "commit after the move", a.commit(a.generation))
	if code := a.heartbeat(); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after the move: %v, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(code))
	}
	converge(t, cb, []*ccMember{a, b}, []*cgMember{x}, 4)

	leave := x.request()
	leave.MemberEpoch = -1
	if resp := x.send(leave); resp.ErrorCode != 0 {
		t.Fatalf("leave: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	move(cb, onB, onA)
	a.c, b.c = ca, ca
	for _, m := range []*ccMember{a, b} {
		if code := m.heartbeat(); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("heartbeat after the downgrade and a move: %v, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(code))
		}
	}
	if consumer, state, _ := groupType(t, ca); consumer || state != "PreparingRebalance" {
		t.Fatalf("loaded after the downgrade: consumer %v, %s", consumer, state)
	}
	ja, jb := a.join(), b.join()
	if code := a.joined(recv(t, ja)); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	if code := b.joined(recv(t, jb)); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	if a.generation != b.generation {
		t.Fatalf("generations %d, %d", a.generation, b.generation)
	}
}
