package group

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/sqlite"
)

// These tests drive a Coordinator with kmsg requests over a real SQLite
// store, no process and no network. Parked requests are awaited on their
// channels; nothing sleeps.

const (
	groupID = "g"
	topic   = "t" // three partitions
)

// fixture is a store and one placement switch shared by its coordinators.
type fixture struct {
	t            *testing.T
	store        *sqlite.Store
	coordinating atomic.Bool
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := &fixture{t: t, store: s}
	f.coordinating.Store(true)
	return f
}

// coordinator returns a new Coordinator over the fixture's store; cfg
// tweaks its Config.
func (f *fixture) coordinator(tweak func(*Config)) *Coordinator {
	cfg := Config{
		Store:         f.store,
		IsCoordinator: func(string) bool { return f.coordinating.Load() },
		Partitions: func(_ context.Context, name string) (int, error) {
			if name == topic {
				return 3, nil
			}
			return 0, fmt.Errorf("topic %s: %w", name, metastore.ErrUnknownTopic)
		},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c := NewCoordinator(cfg)
	f.t.Cleanup(c.Close) // stops session and rebalance timers
	return c
}

// joiner is one member's view of the group protocol.
type joiner struct {
	c          *Coordinator
	id         string
	instance   string // group.instance.id; empty for a dynamic member
	session    time.Duration
	rebalance  time.Duration
	generation int32
	leader     string
	members    []string // as the leader got them
}

func newJoiner(c *Coordinator) *joiner {
	return &joiner{c: c, session: 10 * time.Second, rebalance: 10 * time.Second}
}

func (j *joiner) joinRequest() *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 9
	req.Group = groupID
	req.MemberID = j.id
	if j.instance != "" {
		req.InstanceID = &j.instance
	}
	req.SessionTimeoutMillis = int32(j.session / time.Millisecond)
	req.RebalanceTimeoutMillis = int32(j.rebalance / time.Millisecond)
	req.ProtocolType = "consumer"
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{topic}
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", md.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	return req
}

// getID does the first JoinGroup of a new member (KIP-394): the
// coordinator answers MEMBER_ID_REQUIRED with the member's id.
func (j *joiner) getID(t *testing.T) {
	t.Helper()
	resp, parked := j.c.JoinGroup(context.Background(), j.joinRequest(), Client{ID: "test", Host: "/127.0.0.1"})
	if parked != nil {
		t.Fatal("first join was parked, want MEMBER_ID_REQUIRED")
	}
	if resp.ErrorCode != kerr.MemberIDRequired.Code || resp.MemberID == "" {
		t.Fatalf("first join: code %d, member %q; want MEMBER_ID_REQUIRED and an id", resp.ErrorCode, resp.MemberID)
	}
	j.id = resp.MemberID
}

// join sends JoinGroup with the member's id and returns where its answer
// comes.
func (j *joiner) join(t *testing.T) <-chan kmsg.Response {
	t.Helper()
	resp, parked := j.c.JoinGroup(context.Background(), j.joinRequest(), Client{ID: "test", Host: "/127.0.0.1"})
	return answered(resp, parked)
}

// joined records a join response, which must be a success.
func (j *joiner) joined(t *testing.T, r kmsg.Response) {
	t.Helper()
	resp := r.(*kmsg.JoinGroupResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("member %s join: %v", j.id, err)
	}
	j.id, j.generation, j.leader = resp.MemberID, resp.Generation, resp.LeaderID
	j.members = j.members[:0]
	for _, m := range resp.Members {
		j.members = append(j.members, m.MemberID)
	}
}

// sync sends SyncGroup; the leader passes the assignments.
func (j *joiner) sync(t *testing.T, plan map[string]string) <-chan kmsg.Response {
	t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = groupID, j.id, j.generation
	for id, a := range plan {
		as := kmsg.NewSyncGroupRequestGroupAssignment()
		as.MemberID, as.MemberAssignment = id, []byte(a)
		req.GroupAssignment = append(req.GroupAssignment, as)
	}
	resp, parked := j.c.SyncGroup(context.Background(), req)
	return answered(resp, parked)
}

func (j *joiner) heartbeat(generation int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation = groupID, j.id, generation
	return j.c.Heartbeat(context.Background(), req).ErrorCode
}

// commit commits offset for every partition listed, returning each
// partition's code.
func (j *joiner) commit(generation int32, topic string, offset int64, partitions ...int32) []int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.MemberID, req.Generation = groupID, j.id, generation
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for _, p := range partitions {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, offset
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	var codes []int16
	for _, st := range j.c.OffsetCommit(context.Background(), req).Topics {
		for _, sp := range st.Partitions {
			codes = append(codes, sp.ErrorCode)
		}
	}
	return codes
}

// answered turns a coordinator's reply into one channel to read.
func answered[R kmsg.Response](resp R, parked <-chan kmsg.Response) <-chan kmsg.Response {
	if parked != nil {
		return parked
	}
	ch := make(chan kmsg.Response, 1)
	ch <- resp
	return ch
}

// recv waits for a parked reply. The bound only turns a hang into a
// failure; nothing is timed.
func recv(t *testing.T, ch <-chan kmsg.Response) kmsg.Response {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(time.Minute):
		t.Fatal("no reply to a parked request")
		return nil
	}
}

// pending reports whether ch has no reply yet.
func pending(ch <-chan kmsg.Response) bool {
	select {
	case r := <-ch:
		panic(fmt.Sprintf("unexpected reply %#v", r))
	default:
		return true
	}
}

func syncedAssignment(t *testing.T, j *joiner, r kmsg.Response) string {
	t.Helper()
	resp := r.(*kmsg.SyncGroupResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("member %s sync: %v", j.id, err)
	}
	return string(resp.MemberAssignment)
}

// stableGroup brings two members through their first rebalance and returns
// them, leader first.
func stableGroup(t *testing.T, c *Coordinator) (leader, follower *joiner) {
	t.Helper()
	a, b := newJoiner(c), newJoiner(c)
	a.getID(t)
	b.getID(t)
	ja := a.join(t)
	if !pending(ja) {
		t.Fatal("join answered while another member id is unclaimed")
	}
	jb := b.join(t)
	a.joined(t, recv(t, ja))
	b.joined(t, recv(t, jb))
	if a.generation != 1 || b.generation != 1 || a.leader != b.leader {
		t.Fatalf("after join: generations %d, %d; leaders %q, %q", a.generation, b.generation, a.leader, b.leader)
	}
	leader, follower = a, b
	if b.id == b.leader {
		leader, follower = b, a
	}
	if len(leader.members) != 2 || len(follower.members) != 0 {
		t.Fatalf("leader got %d members' metadata, follower %d; want 2 and 0", len(leader.members), len(follower.members))
	}
	sf := follower.sync(t, nil)
	if !pending(sf) {
		t.Fatal("follower's sync answered before the leader's")
	}
	sl := leader.sync(t, map[string]string{leader.id: "L", follower.id: "F"})
	if got := syncedAssignment(t, leader, recv(t, sl)); got != "L" {
		t.Fatalf("leader's assignment = %q, want L", got)
	}
	if got := syncedAssignment(t, follower, recv(t, sf)); got != "F" {
		t.Fatalf("follower's assignment = %q, want F", got)
	}
	return leader, follower
}

func TestJoinSyncHeartbeat(t *testing.T) {
	f := newFixture(t)
	c := f.coordinator(nil)
	leader, follower := stableGroup(t, c)

	stored, ok, err := f.store.Group(context.Background(), groupID)
	if err != nil || !ok {
		t.Fatalf("stored group: ok=%v err=%v", ok, err)
	}
	if stored.Generation != 1 || len(stored.Members) != 2 || stored.Leader != leader.id {
		t.Fatalf("stored group: generation %d, %d members, leader %q", stored.Generation, len(stored.Members), stored.Leader)
	}
	if code := follower.heartbeat(1); code != 0 {
		t.Fatalf("heartbeat: %v", kerr.ErrorForCode(code))
	}
	if code := follower.heartbeat(0); code != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat with a stale generation: %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(code))
	}
	if got := c.Count(); got != 1 {
		t.Fatalf("Count = %d, want 1", got)
	}

	desc := kmsg.NewPtrDescribeGroupsRequest()
	desc.Version = 5
	desc.Groups = []string{groupID}
	dg := c.DescribeGroups(context.Background(), desc).Groups[0]
	if dg.ErrorCode != 0 || dg.State != "Stable" || len(dg.Members) != 2 || dg.Protocol != "range" {
		t.Fatalf("describe: code %d, state %q, %d members, protocol %q", dg.ErrorCode, dg.State, len(dg.Members), dg.Protocol)
	}
}

func TestLeaveRebalancesAndFencesOffsets(t *testing.T) {
	f := newFixture(t)
	c := f.coordinator(nil)
	leader, follower := stableGroup(t, c)

	if codes := follower.commit(1, topic, 42, 0, 1); codes[0] != 0 || codes[1] != 0 {
		t.Fatalf("commit at generation 1: %v", codes)
	}

	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 5
	leave.Group = groupID
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = follower.id
	leave.Members = append(leave.Members, lm)
	lr := c.LeaveGroup(context.Background(), leave)
	if lr.ErrorCode != 0 || len(lr.Members) != 1 || lr.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %+v", lr)
	}

	if code := leader.heartbeat(1); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after a member left: %v, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(code))
	}
	leader.joined(t, recv(t, leader.join(t)))
	if leader.generation != 2 || leader.leader != leader.id || len(leader.members) != 1 {
		t.Fatalf("rejoin: generation %d, leader %q, %d members", leader.generation, leader.leader, len(leader.members))
	}
	if got := syncedAssignment(t, leader, recv(t, leader.sync(t, map[string]string{leader.id: "all"}))); got != "all" {
		t.Fatalf("assignment = %q", got)
	}

	if codes := leader.commit(1, topic, 7, 0); codes[0] != kerr.IllegalGeneration.Code {
		t.Fatalf("commit at a stale generation: %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(codes[0]))
	}
	if codes := follower.commit(2, topic, 7, 0); codes[0] != kerr.UnknownMemberID.Code {
		t.Fatalf("commit by a member that left: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(codes[0]))
	}
	codes := leader.commit(2, topic, 43, 0, 5)
	if codes[0] != 0 || codes[1] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("commit at generation 2 to partitions 0 and 5: %v", codes)
	}
	if codes := leader.commit(2, "nope", 1, 0); codes[0] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("commit to an unknown topic: %v", kerr.ErrorForCode(codes[0]))
	}

	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version = 7
	fetch.Group = groupID
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = topic, []int32{0, 1, 2}
	fetch.Topics = append(fetch.Topics, ft)
	fr := c.OffsetFetch(context.Background(), fetch)
	if fr.ErrorCode != 0 || len(fr.Topics) != 1 {
		t.Fatalf("fetch: %+v", fr)
	}
	var got []int64
	for _, p := range fr.Topics[0].Partitions {
		got = append(got, p.Offset)
	}
	if fmt.Sprint(got) != "[43 42 -1]" {
		t.Fatalf("fetched offsets %v, want [43 42 -1]", got)
	}
}

func TestNotCoordinator(t *testing.T) {
	f := newFixture(t)
	c := f.coordinator(nil)

	// A join parked while another member id is unclaimed is answered
	// NOT_COORDINATOR once placement moves the group elsewhere.
	a, b := newJoiner(c), newJoiner(c)
	a.getID(t)
	b.getID(t)
	parked := a.join(t)
	if !pending(parked) {
		t.Fatal("join answered while another member id is unclaimed")
	}
	f.coordinating.Store(false)
	c.sweep()
	if resp := recv(t, parked).(*kmsg.JoinGroupResponse); resp.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("parked join after placement moved: %v, want NOT_COORDINATOR", kerr.ErrorForCode(resp.ErrorCode))
	}
	if got := c.Count(); got != 0 {
		t.Fatalf("Count after unloading = %d, want 0", got)
	}

	resp, _ := c.JoinGroup(context.Background(), b.joinRequest(), Client{})
	if resp == nil || resp.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("join: %+v, want NOT_COORDINATOR", resp)
	}
	if code := b.heartbeat(1); code != kerr.NotCoordinator.Code {
		t.Fatalf("heartbeat: %v, want NOT_COORDINATOR", kerr.ErrorForCode(code))
	}
	if codes := b.commit(1, topic, 1, 0); codes[0] != kerr.NotCoordinator.Code {
		t.Fatalf("commit: %v, want NOT_COORDINATOR", kerr.ErrorForCode(codes[0]))
	}
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version = 7
	fetch.Group = groupID
	if fr := c.OffsetFetch(context.Background(), fetch); fr.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("fetch: %v, want NOT_COORDINATOR", kerr.ErrorForCode(fr.ErrorCode))
	}
}

func TestCloseAnswersParkedRequests(t *testing.T) {
	f := newFixture(t)
	c := f.coordinator(nil)
	a, b := newJoiner(c), newJoiner(c)
	a.getID(t)
	b.getID(t)
	parked := a.join(t)
	c.Close()
	if resp := recv(t, parked).(*kmsg.JoinGroupResponse); resp.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("parked join after Close: %v, want NOT_COORDINATOR", kerr.ErrorForCode(resp.ErrorCode))
	}
	resp, _ := c.JoinGroup(context.Background(), b.joinRequest(), Client{})
	if resp == nil || resp.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("join after Close: %+v, want NOT_COORDINATOR", resp)
	}
}

// TestUnclaimedMemberIDExpires: a member id handed out with
// MEMBER_ID_REQUIRED holds the join phase open for one session timeout
// only; a client that never comes back does not block the group.
func TestUnclaimedMemberIDExpires(t *testing.T) {
	f := newFixture(t)
	c := f.coordinator(func(cfg *Config) { cfg.MinSessionTimeout = time.Millisecond })
	a, silent := newJoiner(c), newJoiner(c)
	a.getID(t)
	silent.session = 50 * time.Millisecond
	silent.getID(t) // and never joins
	a.joined(t, recv(t, a.join(t)))
	if a.generation != 1 || len(a.members) != 1 || a.members[0] != a.id {
		t.Fatalf("join: generation %d, members %v; want 1 and only %s", a.generation, a.members, a.id)
	}
}

// TestStoreFencesStaleCoordinator: two coordinators both believe they own
// the group (a placement change not yet seen). The one that moved the
// group on wins; the other's commits at the old generation are refused by
// the store, and its next save unloads the group.
func TestStoreFencesStaleCoordinator(t *testing.T) {
	f := newFixture(t)
	old := f.coordinator(nil)
	leader, follower := stableGroup(t, old)

	// The new coordinator loads generation 1 from the store and rebalances
	// to generation 2 with the same members.
	cur := f.coordinator(nil)
	nl, nf := *leader, *follower
	nl.c, nf.c = cur, cur
	if code := nl.heartbeat(1); code != 0 {
		t.Fatalf("heartbeat to the new coordinator: %v", kerr.ErrorForCode(code))
	}
	jl := nl.join(t) // the leader rejoining starts a rebalance
	jf := nf.join(t)
	nl.joined(t, recv(t, jl))
	nf.joined(t, recv(t, jf))
	if nl.generation != 2 || nf.generation != 2 || nl.leader != nl.id {
		t.Fatalf("at the new coordinator: generations %d, %d, leader %q; want 2, 2, %q", nl.generation, nf.generation, nl.leader, nl.id)
	}
	sf := nf.sync(t, nil)
	syncedAssignment(t, &nl, recv(t, nl.sync(t, map[string]string{nl.id: "L2", nf.id: "F2"})))
	syncedAssignment(t, &nf, recv(t, sf))

	// The old coordinator still holds generation 1 in memory. A rebalance
	// there cannot be saved over generation 2: the group is unloaded and
	// both members are sent elsewhere before they hear of a generation the
	// store does not have.
	jl, jf = leader.join(t), follower.join(t)
	for _, ch := range []<-chan kmsg.Response{jl, jf} {
		if code := recv(t, ch).(*kmsg.JoinGroupResponse).ErrorCode; code != kerr.NotCoordinator.Code {
			t.Fatalf("join on the stale coordinator: %v, want NOT_COORDINATOR", kerr.ErrorForCode(code))
		}
	}
	// Loaded again on the next request: the store's generation 2.
	if codes := follower.commit(1, topic, 99, 0); codes[0] != kerr.IllegalGeneration.Code {
		t.Fatalf("commit at generation 1: %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(codes[0]))
	}

	// Here the old coordinator still holds generation 2 in memory, and
	// the new one moves the group to 3. The old one's reload claimed the
	// group, so the new one's first save is refused and its members are
	// sent away once; their retries take the group back.
	jl, jf = nl.join(t), nf.join(t)
	for _, ch := range []<-chan kmsg.Response{jl, jf} {
		if code := recv(t, ch).(*kmsg.JoinGroupResponse).ErrorCode; code != kerr.NotCoordinator.Code {
			t.Fatalf("join on the coordinator whose claim was superseded: %v, want NOT_COORDINATOR", kerr.ErrorForCode(code))
		}
	}
	jl, jf = nl.join(t), nf.join(t)
	nl.joined(t, recv(t, jl))
	nf.joined(t, recv(t, jf))
	sf = nf.sync(t, nil)
	syncedAssignment(t, &nl, recv(t, nl.sync(t, map[string]string{nl.id: "L3", nf.id: "F3"})))
	syncedAssignment(t, &nf, recv(t, sf))
	// A commit the old coordinator's memory accepts is refused by the
	// store; the member is sent to find the coordinator.
	if codes := follower.commit(2, topic, 99, 0); codes[0] != kerr.NotCoordinator.Code {
		t.Fatalf("commit through the stale coordinator: %v, want NOT_COORDINATOR", kerr.ErrorForCode(codes[0]))
	}
	committed, err := f.store.FetchOffsets(context.Background(), groupID)
	if err != nil {
		t.Fatal(err)
	}
	if len(committed) != 0 {
		t.Fatalf("store holds %v after a fenced commit", committed)
	}
	if codes := nf.commit(3, topic, 5, 0); codes[0] != 0 {
		t.Fatalf("commit through the current coordinator: %v", kerr.ErrorForCode(codes[0]))
	}
	stored, _, err := f.store.Group(context.Background(), groupID)
	if err != nil || stored.Generation != 3 {
		t.Fatalf("stored group after the stale save: generation %d, err %v", stored.Generation, err)
	}
	for _, m := range stored.Members {
		if a := string(m.Assignment); a != "L3" && a != "F3" {
			t.Fatalf("stored assignment %q, want the current coordinator's", a)
		}
	}
}

// Issue 11, item 10: member ids handed out with MEMBER_ID_REQUIRED and
// never claimed are bounded per group, however often a client asks.
func TestPendingMemberIDsAreBounded(t *testing.T) {
	c := newFixture(t).coordinator(nil)
	j := newJoiner(c)
	for i := 0; i < maxPendingMembers+50; i++ {
		j.id = "" // a new joiner each time, never coming back
		j.getID(t)
	}
	c.mu.Lock()
	g := c.groups[groupID]
	c.mu.Unlock()
	g.mu.Lock()
	n, order := len(g.pending), len(g.pendingOrder)
	g.mu.Unlock()
	if n > maxPendingMembers || order > 2*maxPendingMembers+1 {
		t.Fatalf("%d member ids pending (%d remembered in order), want at most %d", n, order, maxPendingMembers)
	}
	// The newest id is still good: its owner joins.
	j.joined(t, <-j.join(t))
}
