package group

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Edge cases of online migration (migration_test.go has the main
// paths and the test clients): topic lists that trail, the classic
// members' deadlines, static members switching protocol, offline
// conversions, and hostile ConsumerProtocol bytes.

// TestUpgradeWaitsForTopics: a classic member owns partitions of a topic
// the coordinator's topic list does not show yet (a cache trailing topic
// creation). Converting then would let the target hand them out while
// the member still consumes them, so the joiner is told to retry until
// the list shows the topic.
func TestUpgradeWaitsForTopics(t *testing.T) {
	f := newFixture(t)
	ts := &cgTopics{list: []TopicInfo{{Name: topic, ID: cgTopicID, Partitions: 2}}}
	c := f.coordinator(func(cfg *Config) { cfg.Topics = ts.get })
	a, b := newCCMember(t, c), newCCMember(t, c)
	classicStable(t, a, b) // partitions 0–11; the list shows 2
	x := newCGMember(t, c, "x")
	if resp := x.send(x.request()); resp.ErrorCode != kerr.CoordinatorLoadInProgress.Code {
		t.Fatalf("heartbeat while the topic list trails: %v, want COORDINATOR_LOAD_IN_PROGRESS", kerr.ErrorForCode(resp.ErrorCode))
	}
	if consumer, state, _ := groupType(t, c); consumer || state != "Stable" {
		t.Fatalf("after a deferred upgrade: consumer %v, %s", consumer, state)
	}
	ts.list[0].Partitions = 12
	x.heartbeat()
	if consumer, _, _ := groupType(t, c); !consumer {
		t.Fatal("no upgrade once the topic list caught up")
	}
	converge(t, c, []*ccMember{a, b}, []*cgMember{x}, 4)
}

// TestClassicMemberDeadlines: a classic member of a consumer group that
// does not sync within its rebalance timeout after joining, or does not
// rejoin within it after being told to, is fenced and the group epoch
// moves on, as Kafka's join and sync timeouts do.
func TestClassicMemberDeadlines(t *testing.T) {
	_, c := migrationFixture(t, "")
	x := newCGMember(t, c, "x")
	x.heartbeat()
	a, b := newCCMember(t, c), newCCMember(t, c)
	for _, m := range []*ccMember{a, b} {
		if code := m.joined(recv(t, m.join())); code != 0 {
			t.Fatalf("classic join: %v", kerr.ErrorForCode(code))
		}
	}
	g := c.loaded(groupID)
	lapse := func(id string, set func(*classicMember)) {
		g.mu.Lock()
		m := g.consumer.members[id]
		set(m.classic)
		g.mu.Unlock()
		g.expireConsumer(m)
	}
	member := func(id string) bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		_, ok := g.consumer.members[id]
		return ok
	}
	// a never syncs.
	if code := b.synced(recv(t, b.sync(nil))); code != 0 {
		t.Fatalf("b sync: %v", kerr.ErrorForCode(code))
	}
	lapse(b.id, func(cm *classicMember) {
		if !cm.syncBy.IsZero() {
			t.Error("a member that synced still has a sync deadline")
		}
	})
	if !member(b.id) {
		t.Fatal("a member that synced was fenced for not syncing")
	}
	_, _, before := groupType(t, c)
	lapse(a.id, func(cm *classicMember) { cm.syncBy = time.Now().Add(-time.Second) })
	if member(a.id) {
		t.Fatal("a classic member that never synced is still in the group")
	}
	if _, _, after := groupType(t, c); after != before+1 {
		t.Fatalf("group epoch %d after fencing, want %d", after, before+1)
	}
	// b is told to rejoin (the epoch moved) and never does.
	if code := b.heartbeat(); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat behind the epoch: %v, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(code))
	}
	lapse(b.id, func(cm *classicMember) {
		if cm.joinBy.IsZero() {
			t.Error("a member told to rejoin has no join deadline")
		}
		cm.joinBy = time.Now().Add(-time.Second)
	})
	if member(b.id) {
		t.Fatal("a classic member that never rejoined is still in the group")
	}
	if code := b.heartbeat(); code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat of a fenced member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
	}
}

// TestStaticMemberSwitchesProtocol: a static member of the classic
// protocol restarts with the consumer protocol under the same
// group.instance.id: it takes its place and partitions at once (Kafka
// asks a consumer-protocol member for its -2 leave first, not a classic
// one), and the old incarnation is fenced.
func TestStaticMemberSwitchesProtocol(t *testing.T) {
	_, c := migrationFixture(t, "")
	x := newCGMember(t, c, "x")
	x.heartbeat()
	s := newCCMember(t, c)
	s.instance = "i1"
	if code := s.joined(recv(t, s.join())); code != 0 {
		t.Fatalf("static classic join: %v", kerr.ErrorForCode(code))
	}
	s.synced(recv(t, s.sync(nil)))
	converge(t, c, []*ccMember{s}, []*cgMember{x}, 6)
	had := slices.Clone(s.owned)

	y := newCGMember(t, c, "y")
	y.instance = "i1"
	y.heartbeat()
	var got []int32
	for _, ps := range y.owned {
		got = append(got, ps...)
	}
	slices.Sort(got)
	if !slices.Equal(got, had) {
		t.Fatalf("the new incarnation owns %v, the classic one had %v", got, had)
	}
	if code := s.heartbeat(); code != kerr.FencedInstanceID.Code && code != kerr.UnknownMemberID.Code {
		t.Fatalf("the replaced classic incarnation's heartbeat: %v, want FENCED_INSTANCE_ID", kerr.ErrorForCode(code))
	}
	s.owned = nil
	converge(t, c, nil, []*cgMember{x, y}, 6)
}

// FuzzClassicProtocol: a classic member's ConsumerProtocol metadata and
// assignment come from clients; decoding them never panics and never
// yields more than the bounds.
func FuzzClassicProtocol(f *testing.F) {
	md := kmsg.NewConsumerMemberMetadata()
	md.Version = 3
	md.Topics = []string{topic, "u"}
	o := kmsg.NewConsumerMemberMetadataOwnedPartition()
	o.Topic, o.Partitions = topic, []int32{1, 2}
	md.OwnedPartitions = append(md.OwnedPartitions, o)
	f.Add(md.AppendTo(nil))
	f.Add(assignmentOf(span(0, 12)))
	f.Add([]byte{0, 1, 0x7f, 0xff, 0xff, 0xff})
	ix := indexTopics([]TopicInfo{{Name: topic, ID: cgTopicID, Partitions: 12}})
	f.Fuzz(func(t *testing.T, b []byte) {
		if sub, err := decodeSubscription(b); err == nil {
			n := 0
			for _, ps := range sub.owned {
				n += len(ps)
			}
			if len(sub.topics) > maxSubscribedTopics || n > maxOwnedPartitions {
				t.Fatalf("decoded past the bounds: %d topics, %d owned", len(sub.topics), n)
			}
		}
		if s, _, err := ix.decodeAssignment(b); err == nil {
			for p := range s {
				if p.t != cgTopicID || p.p < 0 || p.p >= 12 {
					t.Fatalf("decoded a partition the index does not have: %v", p)
				}
			}
			ix.encodeAssignment(s, protocolVersion(b))
		}
	})
}

// TestOfflineMigration: an empty group changes type with its next
// member, whatever the policy (Kafka deletes the empty group first): an
// empty classic group takes a ConsumerGroupHeartbeat, including one whose
// member ids handed out (MEMBER_ID_REQUIRED) were never claimed, and an
// empty consumer group a JoinGroup. Committed offsets stay.
func TestOfflineMigration(t *testing.T) {
	f, c := migrationFixture(t, MigrationDisabled)
	a := newCCMember(t, c)
	a.joined(recv(t, a.join()))
	a.synced(recv(t, a.sync(map[string][]int32{a.id: span(0, 12)})))
	if code := a.commit(a.generation); code != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(code))
	}
	lreq := kmsg.NewPtrLeaveGroupRequest()
	lreq.SetVersion(0)
	lreq.Group, lreq.MemberID = groupID, a.id
	if code := c.LeaveGroup(context.Background(), lreq).ErrorCode; code != 0 {
		t.Fatalf("leave: %v", kerr.ErrorForCode(code))
	}
	// A member id handed out and never claimed.
	if resp, _ := c.JoinGroup(context.Background(), newCCMember(t, c).joinRequest(), Client{ID: "classic"}); resp == nil || resp.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("first join: %+v", resp)
	}
	x := newCGMember(t, c, "x")
	x.heartbeat()
	if consumer, _, _ := groupType(t, c); !consumer || x.count() != 12 {
		t.Fatalf("empty classic group after a heartbeat: consumer %v, member owns %d", consumer, x.count())
	}
	leave := x.request()
	leave.MemberEpoch = -1
	if resp := x.send(leave); resp.ErrorCode != 0 {
		t.Fatalf("leave: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	b := newCCMember(t, c)
	b.joined(recv(t, b.join()))
	if consumer, state, _ := groupType(t, c); consumer || state != "CompletingRebalance" {
		t.Fatalf("empty consumer group after a JoinGroup: consumer %v, %s", consumer, state)
	}
	offs, err := f.store.FetchOffsets(context.Background(), groupID)
	if err != nil || len(offs) != 1 || offs[0].Offset != 7 {
		t.Fatalf("committed offsets after two conversions: %+v, %v", offs, err)
	}
}
