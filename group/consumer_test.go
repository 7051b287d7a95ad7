package group

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/metastore"
)

// These tests drive consumer groups (KIP-848) through a Coordinator over
// a real SQLite store, heartbeat by heartbeat, as a client would.

var (
	cgTopicID = metastore.TopicID{1}
	cgOtherID = metastore.TopicID{2}
)

// cgTopics is the cluster as consumer groups see it; tests may add to it.
type cgTopics struct{ list []TopicInfo }

func (ts *cgTopics) get(context.Context) ([]TopicInfo, error) { return ts.list, nil }

func (f *fixture) consumerCoordinator(ts *cgTopics) *Coordinator {
	return f.coordinator(func(c *Config) { c.Topics = ts.get })
}

// cgMember is one member's client-side view.
type cgMember struct {
	t        *testing.T
	c        *Coordinator
	id       string
	instance string
	epoch    int32
	owned    map[metastore.TopicID][]int32
}

func newCGMember(t *testing.T, c *Coordinator, id string) *cgMember {
	return &cgMember{t: t, c: c, id: id}
}

func (m *cgMember) request() *kmsg.ConsumerGroupHeartbeatRequest {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.SetVersion(1)
	req.Group, req.MemberID, req.MemberEpoch = groupID, m.id, m.epoch
	if m.instance != "" {
		req.InstanceID = &m.instance
	}
	if m.epoch == 0 {
		req.RebalanceTimeoutMillis = 60000
		req.SubscribedTopicNames = []string{topic}
	}
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for id, ps := range m.owned {
		rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
		rt.TopicID, rt.Partitions = id, ps
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// heartbeat sends req and, on success, adopts the answer as a client
// does: the epoch, and the assignment (revoking what it no longer has at
// once).
func (m *cgMember) send(req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	m.t.Helper()
	resp := m.c.ConsumerGroupHeartbeat(context.Background(), req, Client{ID: "cl", Host: "/127.0.0.1"})
	if resp.ErrorCode != 0 {
		return resp
	}
	m.epoch = resp.MemberEpoch
	if resp.Assignment != nil {
		m.owned = map[metastore.TopicID][]int32{}
		for _, at := range resp.Assignment.Topics {
			m.owned[at.TopicID] = at.Partitions
		}
	}
	return resp
}

func (m *cgMember) heartbeat() *kmsg.ConsumerGroupHeartbeatResponse {
	m.t.Helper()
	resp := m.send(m.request())
	if resp.ErrorCode != 0 {
		m.t.Fatalf("member %s heartbeat: %v", m.id, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp
}

func (m *cgMember) count() int {
	n := 0
	for _, ps := range m.owned {
		n += len(ps)
	}
	return n
}

// checkExclusive fails if two members own one partition.
func checkExclusive(t *testing.T, ms ...*cgMember) {
	t.Helper()
	seen := map[string]string{}
	for _, m := range ms {
		for id, ps := range m.owned {
			for _, p := range ps {
				k := fmt.Sprintf("%x/%d", id[:1], p)
				if o, ok := seen[k]; ok {
					t.Fatalf("partition %s owned by %s and %s", k, o, m.id)
				}
				seen[k] = m.id
			}
		}
	}
}

// settle heartbeats every member round-robin, checking after every
// heartbeat that no partition has two owners, until the group is stable.
func settle(t *testing.T, c *Coordinator, ms ...*cgMember) {
	t.Helper()
	for range 20 {
		for _, m := range ms {
			m.heartbeat()
			checkExclusive(t, ms...)
		}
		g := c.loaded(groupID)
		g.mu.Lock()
		state := g.consumer.stateName(g.generation)
		g.mu.Unlock()
		if state == "Stable" {
			return
		}
	}
	t.Fatal("group did not become stable in 20 rounds")
}

func TestConsumerGroupJoinRebalanceLeave(t *testing.T) {
	f := newFixture(t)
	ts := &cgTopics{list: []TopicInfo{{Name: topic, ID: cgTopicID, Partitions: 12}}}
	c := f.consumerCoordinator(ts)

	a := newCGMember(t, c, "a")
	resp := a.heartbeat()
	if a.epoch != 1 || a.count() != 12 || resp.HeartbeatIntervalMillis != 5000 {
		t.Fatalf("first member: epoch %d, %d partitions, interval %d", a.epoch, a.count(), resp.HeartbeatIntervalMillis)
	}
	b, d := newCGMember(t, c, "b"), newCGMember(t, c, "d")
	settle(t, c, a, b, d)
	for _, m := range []*cgMember{a, b, d} {
		if m.count() != 4 {
			t.Fatalf("member %s owns %d partitions, want 4", m.id, m.count())
		}
	}

	// A stale epoch (ahead of the member's) is fenced.
	req := a.request()
	req.MemberEpoch = a.epoch + 1
	if resp := a.send(req); resp.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Fatalf("epoch ahead: %v, want FENCED_MEMBER_EPOCH", kerr.ErrorForCode(resp.ErrorCode))
	}
	// An unknown member is told so.
	x := newCGMember(t, c, "x")
	x.epoch = 3
	if resp := x.send(x.request()); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(resp.ErrorCode))
	}

	// b leaves; the rest take its partitions.
	leave := b.request()
	leave.MemberEpoch = -1
	if resp := b.send(leave); resp.ErrorCode != 0 || resp.MemberEpoch != -1 {
		t.Fatalf("leave: %+v", resp)
	}
	settle(t, c, a, d)
	if a.count()+d.count() != 12 || a.count() != 6 {
		t.Fatalf("after leave: %d + %d partitions", a.count(), d.count())
	}

	// Offsets: a member commits with its epoch; an old epoch is stale.
	commit := func(m *cgMember, epoch int32, version int16) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.SetVersion(version)
		req.Group, req.MemberID, req.Generation = groupID, m.id, epoch
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, 5
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return c.OffsetCommit(context.Background(), req).Topics[0].Partitions[0].ErrorCode
	}
	f.partitions12(c)
	if code := commit(a, a.epoch, 9); code != 0 {
		t.Fatalf("commit at the member epoch: %v", kerr.ErrorForCode(code))
	}
	if code := commit(a, a.epoch-1, 9); code != kerr.StaleMemberEpoch.Code {
		t.Fatalf("commit at an old epoch: %v, want STALE_MEMBER_EPOCH", kerr.ErrorForCode(code))
	}
	if code := commit(a, a.epoch, 8); code != kerr.UnsupportedVersion.Code {
		t.Fatalf("commit v8 by a consumer member: %v, want UNSUPPORTED_VERSION", kerr.ErrorForCode(code))
	}
	if code := commit(newCGMember(t, c, ""), -1, 9); code != kerr.UnknownMemberID.Code {
		t.Fatalf("commit from outside a group with members: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
	}

	// A new coordinator loads the group as saved: epochs and
	// assignments carry on without a rejoin.
	c.Close()
	c2 := f.consumerCoordinator(ts)
	a.c, d.c = c2, c2
	ownedA := a.count()
	a.heartbeat()
	d.heartbeat()
	if a.count() != ownedA {
		t.Fatalf("after the move a owns %d partitions, had %d", a.count(), ownedA)
	}
	checkExclusive(t, a, d)
}

// partitions12 makes the fixture's topic have 12 partitions for offset
// commits.
func (f *fixture) partitions12(c *Coordinator) {
	c.partitions = func(_ context.Context, name string) (int, error) {
		if name == topic {
			return 12, nil
		}
		return 0, fmt.Errorf("topic %s: %w", name, metastore.ErrUnknownTopic)
	}
}

// TestConsumerGroupRevokeBeforeAssign: a partition moves to a new member
// only after its previous owner reported it revoked.
func TestConsumerGroupRevokeBeforeAssign(t *testing.T) {
	f := newFixture(t)
	ts := &cgTopics{list: []TopicInfo{{Name: topic, ID: cgTopicID, Partitions: 4}}}
	c := f.consumerCoordinator(ts)
	a := newCGMember(t, c, "a")
	a.heartbeat()
	b := newCGMember(t, c, "b")
	b.heartbeat() // joins: gets nothing yet, a still owns all four
	if b.count() != 0 {
		t.Fatalf("b got %d partitions before a revoked any", b.count())
	}
	// a heartbeats without reporting what it owns: its assignment
	// shrinks, but b still gets nothing until a says it let go.
	req := a.request()
	req.Topics = nil
	resp := a.send(req)
	if resp.Assignment == nil || a.count() != 2 {
		t.Fatalf("a after revocation: %d partitions, assignment %v", a.count(), resp.Assignment)
	}
	g := c.loaded(groupID)
	g.mu.Lock()
	st := g.consumer.members["a"].state
	g.mu.Unlock()
	if st != memberUnrevoked {
		t.Fatalf("a is %v, want UNREVOKED_PARTITIONS", st)
	}
	b.heartbeat()
	if b.count() != 0 {
		t.Fatalf("b got %d partitions while a was revoking", b.count())
	}
	a.heartbeat() // reports the two it kept: revocation done
	b.heartbeat()
	if b.count() != 2 || a.count() != 2 {
		t.Fatalf("after revocation: a %d, b %d", a.count(), b.count())
	}
	checkExclusive(t, a, b)
	if a.epoch != b.epoch {
		t.Fatalf("epochs a %d, b %d; want equal once stable", a.epoch, b.epoch)
	}
}

// TestConsumerGroupRegexAndNewTopic: a regex subscription picks up a
// topic created later.
func TestConsumerGroupRegexAndNewTopic(t *testing.T) {
	f := newFixture(t)
	ts := &cgTopics{list: []TopicInfo{{Name: "orders", ID: cgTopicID, Partitions: 2}}}
	c := f.consumerCoordinator(ts)
	m := newCGMember(t, c, "a")
	req := m.request()
	req.SubscribedTopicNames = nil
	re := "ord.*"
	req.SubscribedTopicRegex = &re
	if resp := m.send(req); resp.ErrorCode != 0 || m.count() != 2 {
		t.Fatalf("regex join: %v, %d partitions", kerr.ErrorForCode(resp.ErrorCode), m.count())
	}
	ts.list = append(ts.list, TopicInfo{Name: "orders-v2", ID: cgOtherID, Partitions: 3}, TopicInfo{Name: "other", ID: metastore.TopicID{3}, Partitions: 1},
		TopicInfo{Name: "x-orders", ID: metastore.TopicID{4}, Partitions: 1}) // the regex matches whole names only
	m.heartbeat()
	if m.count() != 5 {
		t.Fatalf("after orders-v2 appeared: %d partitions, want 5", m.count())
	}
	bad := "("
	req = newCGMember(t, c, "b").request()
	req.SubscribedTopicRegex = &bad
	if resp := c.ConsumerGroupHeartbeat(context.Background(), req, Client{}); resp.ErrorCode != kerr.InvalidRegularExpression.Code {
		t.Fatalf("bad regex: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}

// TestConsumerGroupStaticMember: a static member that leaves with -2
// keeps its partitions for its next incarnation; another member with the
// same instance id meanwhile is UNRELEASED_INSTANCE_ID.
func TestConsumerGroupStaticMember(t *testing.T) {
	f := newFixture(t)
	ts := &cgTopics{list: []TopicInfo{{Name: topic, ID: cgTopicID, Partitions: 4}}}
	c := f.consumerCoordinator(ts)
	a, b := newCGMember(t, c, "a"), newCGMember(t, c, "b")
	a.instance = "i-a"
	settle(t, c, a, b)
	owned := a.owned
	a2 := newCGMember(t, c, "a2")
	a2.instance = "i-a"
	if resp := a2.send(a2.request()); resp.ErrorCode != kerr.UnreleasedInstanceID.Code {
		t.Fatalf("second incarnation while the first is in: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	leave := a.request()
	leave.MemberEpoch = -2
	if resp := a.send(leave); resp.ErrorCode != 0 || resp.MemberEpoch != -2 {
		t.Fatalf("static leave: %+v", resp)
	}
	a2.epoch = 0
	a2.heartbeat()
	if fmt.Sprint(a2.owned) != fmt.Sprint(owned) {
		t.Fatalf("rejoined static member owns %v, had %v", a2.owned, owned)
	}
	settle(t, c, a2, b)
}

// TestConsumerGroupInvalidRequests: Kafka's request validation.
func TestConsumerGroupInvalidRequests(t *testing.T) {
	f := newFixture(t)
	c := f.consumerCoordinator(&cgTopics{})
	for name, tc := range map[string]struct {
		mut  func(*kmsg.ConsumerGroupHeartbeatRequest)
		code int16
	}{
		"no group":        {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Group = "" }, kerr.InvalidRequest.Code},
		"no member id v1": {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }, kerr.InvalidRequest.Code},
		"epoch -3":        {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -3 }, kerr.InvalidRequest.Code},
		"no subscription": {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicNames = nil }, kerr.InvalidRequest.Code},
		"owned on join": {func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
			rt.Partitions = []int32{0}
			r.Topics = append(r.Topics, rt)
		}, kerr.InvalidRequest.Code},
		"no rebalance timeout":          {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = -1 }, kerr.InvalidRequest.Code},
		"unknown assignor":              {func(r *kmsg.ConsumerGroupHeartbeatRequest) { s := "sticky"; r.ServerAssignor = &s }, kerr.UnsupportedAssignor.Code},
		"static leave without instance": {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -2 }, kerr.InvalidRequest.Code},
	} {
		req := newCGMember(t, c, "m").request()
		tc.mut(req)
		if resp := c.ConsumerGroupHeartbeat(context.Background(), req, Client{}); resp.ErrorCode != tc.code {
			t.Errorf("%s: %v, want %v", name, kerr.ErrorForCode(resp.ErrorCode), kerr.ErrorForCode(tc.code))
		}
	}
	// A v0 join without a member id gets one.
	req := newCGMember(t, c, "").request()
	req.SetVersion(0)
	if resp := c.ConsumerGroupHeartbeat(context.Background(), req, Client{ID: "cl"}); resp.ErrorCode != 0 || resp.MemberID == nil || *resp.MemberID == "" {
		t.Fatalf("v0 join: %+v", resp)
	}
}

// TestAssignors: both assignors give every partition exactly once, and
// uniform balances heterogeneous subscriptions where it can.
func TestAssignors(t *testing.T) {
	mk := func(id string, topics ...string) *cmember { return &cmember{id: id, topics: topics} }
	in := assignInput{
		members: []*cmember{mk("a", "x", "y"), mk("b", "x"), mk("c", "x", "y")},
		topics:  []topicInfo{{name: "x", id: cgTopicID, partitions: 7}, {name: "y", id: cgOtherID, partitions: 5}},
	}
	for _, name := range []string{AssignorUniform, AssignorRange} {
		out := assign(name, in)
		seen := map[tp]string{}
		for id, ps := range out {
			for p := range ps {
				if o, ok := seen[p]; ok {
					t.Fatalf("%s: %v to %s and %s", name, p, o, id)
				}
				seen[p] = id
			}
		}
		if len(seen) != 12 {
			t.Fatalf("%s: %d partitions assigned, want 12", name, len(seen))
		}
		if name == AssignorUniform {
			for id, ps := range out {
				if len(ps) != 4 {
					t.Errorf("uniform: %s has %d, want 4", id, len(ps))
				}
			}
			// Sticky: the same input with this target as the previous one
			// moves nothing.
			for _, m := range in.members {
				m.target = out[m.id]
			}
			again := assign(name, in)
			for id := range out {
				if !again[id].equal(out[id]) {
					t.Errorf("uniform moved partitions of %s on an unchanged group", id)
				}
			}
		}
	}
}

// TestConsumerGroupSessionExpiry: a member that stops heartbeating
// leaves the group when its session lapses, and its partitions go to the
// others.
func TestConsumerGroupSessionExpiry(t *testing.T) {
	f := newFixture(t)
	ts := &cgTopics{list: []TopicInfo{{Name: topic, ID: cgTopicID, Partitions: 4}}}
	c := f.coordinator(func(cfg *Config) {
		cfg.Topics = ts.get
		cfg.ConsumerSessionTimeout = 200 * time.Millisecond
		cfg.ConsumerHeartbeatInterval = 50 * time.Millisecond
	})
	a, b := newCGMember(t, c, "a"), newCGMember(t, c, "b")
	settle(t, c, a, b)
	// Only a keeps heartbeating; b's session lapses.
	poll.Until(t, "b expired and a owns all four partitions", func() bool {
		a.heartbeat()
		return a.count() == 4
	})
	if resp := b.send(b.request()); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(resp.ErrorCode))
	}
}

// commitHookStore runs before ahead of each offset commit, once.
type commitHookStore struct {
	Store
	before func()
}

func (s *commitHookStore) CommitGroupOffsets(ctx context.Context, group string, epoch int64, generation int32, memberID string, offsets []metastore.CommittedOffset) error {
	if f := s.before; f != nil && len(offsets) > 0 {
		s.before = nil
		f()
	}
	return s.Store.CommitGroupOffsets(ctx, group, epoch, generation, memberID, offsets)
}

// TestConsumerGroupCommitRacesJoin: a member joining between a commit's
// check and its write moves the group epoch but not the committer's
// member epoch; the commit still succeeds (it was answered
// STALE_MEMBER_EPOCH, which franz-go's ETL test caught).
func TestConsumerGroupCommitRacesJoin(t *testing.T) {
	f := newFixture(t)
	ts := &cgTopics{list: []TopicInfo{{Name: topic, ID: cgTopicID, Partitions: 12}}}
	hs := &commitHookStore{Store: f.store}
	c := f.coordinator(func(cfg *Config) { cfg.Topics = ts.get; cfg.Store = hs })
	f.partitions12(c)
	a := newCGMember(t, c, "a")
	a.heartbeat()
	b := newCGMember(t, c, "b")
	hs.before = func() { b.heartbeat() }
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(9)
	req.Group, req.MemberID, req.Generation = groupID, a.id, a.epoch
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 3, 7
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if code := c.OffsetCommit(context.Background(), req).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("commit while a member joined: %v", kerr.ErrorForCode(code))
	}
	if b.epoch <= a.epoch {
		t.Fatalf("the join did not move the group epoch: a %d, b %d", a.epoch, b.epoch)
	}
}

// TestConsumerGroupMoveKeepsEpochWithAnyTopicID: a coordinator that
// loads a consumer group leaves its epoch alone when nothing changed,
// whatever bytes the subscribed topic's id holds (most random ids are not
// valid UTF-8, and the group is saved as JSON).
func TestConsumerGroupMoveKeepsEpochWithAnyTopicID(t *testing.T) {
	f := newFixture(t)
	ts := &cgTopics{list: []TopicInfo{{Name: topic, ID: metastore.TopicID{0xff, 0xfe, 0x80}, Partitions: 4}}}
	c := f.consumerCoordinator(ts)
	a := newCGMember(t, c, "a")
	settle(t, c, a)
	epoch := a.epoch
	c.Close()
	a.c = f.consumerCoordinator(ts)
	a.heartbeat()
	if a.epoch != epoch {
		t.Fatalf("after the move the epoch is %d, was %d: the new coordinator saw a changed subscription", a.epoch, epoch)
	}
}
