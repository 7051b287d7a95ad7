package group

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/metastore"
)

// These tests drive share groups (KIP-932) through a Coordinator over a
// real SQLite store, heartbeat by heartbeat, as a client would.

// shMember is one share group member's client-side view.
type shMember struct {
	t        *testing.T
	c        *Coordinator
	id       string
	epoch    int32
	topics   []string
	assigned map[metastore.TopicID][]int32
}

func newShMember(t *testing.T, c *Coordinator, id string) *shMember {
	return &shMember{t: t, c: c, id: id, topics: []string{topic}}
}

func (m *shMember) request() *kmsg.ShareGroupHeartbeatRequest {
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.SetVersion(1)
	req.GroupID, req.MemberID, req.MemberEpoch = groupID, m.id, m.epoch
	if m.epoch == 0 {
		req.SubscribedTopicNames = m.topics
	}
	return req
}

func (m *shMember) send(req *kmsg.ShareGroupHeartbeatRequest) *kmsg.ShareGroupHeartbeatResponse {
	m.t.Helper()
	resp := m.c.ShareGroupHeartbeat(context.Background(), req, Client{ID: "cl", Host: "/127.0.0.1"})
	if resp.ErrorCode != 0 {
		return resp
	}
	m.epoch = resp.MemberEpoch
	if resp.Assignment != nil {
		m.assigned = map[metastore.TopicID][]int32{}
		for _, at := range resp.Assignment.TopicPartitions {
			m.assigned[at.TopicID] = at.Partitions
		}
	}
	return resp
}

func (m *shMember) heartbeat() *kmsg.ShareGroupHeartbeatResponse {
	m.t.Helper()
	resp := m.send(m.request())
	if resp.ErrorCode != 0 {
		m.t.Fatalf("member %s heartbeat: %v", m.id, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp
}

func (m *shMember) count() int {
	n := 0
	for _, ps := range m.assigned {
		n += len(ps)
	}
	return n
}

// settleShare heartbeats every member until all are at one epoch.
func settleShare(ms ...*shMember) {
	for range 3 {
		for _, m := range ms {
			m.heartbeat()
		}
	}
}

func (f *fixture) shareCoordinator(ts *cgTopics) *Coordinator {
	return f.coordinator(func(c *Config) { c.Topics = ts.get })
}

// shTopicID is not valid UTF-8, as most random topic ids are not: the
// saved group must carry it through JSON unchanged.
var shTopicID = metastore.TopicID{0xff, 0xfe, 0x80}

func TestShareGroupJoinShareLeave(t *testing.T) {
	f := newFixture(t)
	ts := &cgTopics{list: []TopicInfo{{Name: topic, ID: shTopicID, Partitions: 2}}}
	c := f.shareCoordinator(ts)

	a := newShMember(t, c, "a")
	resp := a.heartbeat()
	if a.epoch != 1 || a.count() != 2 || resp.HeartbeatIntervalMillis != 5000 {
		t.Fatalf("first member: epoch %d, %d partitions, interval %d", a.epoch, a.count(), resp.HeartbeatIntervalMillis)
	}
	// Three members on two partitions: every member gets one, so one
	// partition is shared, and every partition is assigned.
	b, d := newShMember(t, c, "b"), newShMember(t, c, "d")
	settleShare(a, b, d)
	seen := map[int32]int{}
	for _, m := range []*shMember{a, b, d} {
		if m.count() != 1 {
			t.Fatalf("member %s has %d partitions, want 1", m.id, m.count())
		}
		for _, p := range m.assigned[shTopicID] {
			seen[p]++
		}
		if m.epoch != a.epoch {
			t.Fatalf("member %s at epoch %d, a at %d", m.id, m.epoch, a.epoch)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("partitions assigned: %v, want both", seen)
	}

	// Any epoch but the member's is fenced; an unknown member is told so.
	req := a.request()
	req.MemberEpoch = a.epoch - 1
	if resp := a.send(req); resp.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Fatalf("old epoch: %v, want FENCED_MEMBER_EPOCH", kerr.ErrorForCode(resp.ErrorCode))
	}
	x := newShMember(t, c, "x")
	x.epoch = 3
	if resp := x.send(x.request()); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(resp.ErrorCode))
	}

	// Describe and list show a share group; other APIs refuse it.
	desc := c.ShareGroupDescribe(context.Background(), &kmsg.ShareGroupDescribeRequest{Version: 1, GroupIDs: []string{groupID, "nope"}})
	if g := desc.Groups[0]; g.ErrorCode != 0 || g.GroupState != "Stable" || len(g.Members) != 3 || g.Assignor != "simple" || g.GroupEpoch != a.epoch {
		t.Fatalf("describe: %+v", g)
	}
	if g := desc.Groups[1]; g.ErrorCode != kerr.GroupIDNotFound.Code || g.GroupState != "Dead" {
		t.Fatalf("describe a missing group: %+v", g)
	}
	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.SetVersion(5)
	lreq.TypesFilter = []string{"share"}
	if l := c.ListGroups(context.Background(), lreq); len(l.Groups) != 1 || l.Groups[0].GroupType != "share" || l.Groups[0].ProtocolType != "share" || l.Groups[0].GroupState != "Stable" {
		t.Fatalf("list groups: %+v", l.Groups)
	}
	dreq := kmsg.NewPtrDescribeGroupsRequest()
	dreq.SetVersion(6)
	dreq.Groups = []string{groupID}
	if g := c.DescribeGroups(context.Background(), dreq).Groups[0]; g.ErrorCode != kerr.GroupIDNotFound.Code || g.State != "Dead" {
		t.Fatalf("DescribeGroups of a share group: %+v", g)
	}
	cm := newCGMember(t, c, "c")
	if resp := cm.send(cm.request()); resp.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("consumer heartbeat to a share group: %v, want GROUP_ID_NOT_FOUND", kerr.ErrorForCode(resp.ErrorCode))
	}
	j := newJoiner(c)
	if r, _ := c.JoinGroup(context.Background(), j.joinRequest(), Client{}); r == nil || r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("JoinGroup to a share group: %+v", r)
	}
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.SetVersion(9)
	oc.Group, oc.Generation = groupID, -1
	oct := kmsg.NewOffsetCommitRequestTopic()
	oct.Topic = topic
	ocp := kmsg.NewOffsetCommitRequestTopicPartition()
	oct.Partitions = append(oct.Partitions, ocp)
	oc.Topics = append(oc.Topics, oct)
	if code := c.OffsetCommit(context.Background(), oc).Topics[0].Partitions[0].ErrorCode; code != kerr.GroupIDNotFound.Code {
		t.Fatalf("OffsetCommit to a share group: %v, want GROUP_ID_NOT_FOUND", kerr.ErrorForCode(code))
	}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.SetVersion(8)
	og := kmsg.NewOffsetFetchRequestGroup()
	og.Group = groupID
	of.Groups = append(of.Groups, og)
	if code := c.OffsetFetch(context.Background(), of).Groups[0].ErrorCode; code != kerr.GroupIDNotFound.Code {
		t.Fatalf("OffsetFetch of a share group: %v, want GROUP_ID_NOT_FOUND", kerr.ErrorForCode(code))
	}
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = groupID
	if code := c.OffsetDelete(context.Background(), od).ErrorCode; code != kerr.GroupIDNotFound.Code {
		t.Fatalf("OffsetDelete of a share group: %v, want GROUP_ID_NOT_FOUND", kerr.ErrorForCode(code))
	}
	if code := c.DeleteGroups(context.Background(), &kmsg.DeleteGroupsRequest{Version: 2, Groups: []string{groupID}}).Groups[0].ErrorCode; code != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete a share group with members: %v, want NON_EMPTY_GROUP", kerr.ErrorForCode(code))
	}

	// A new coordinator loads the group as saved: epochs and
	// assignments carry on without a rejoin.
	c.Close()
	c2 := f.shareCoordinator(ts)
	a.c, b.c, d.c = c2, c2, c2
	before := a.epoch
	a.heartbeat()
	if a.epoch != before {
		t.Fatalf("after the move a's epoch is %d, was %d", a.epoch, before)
	}

	// Everyone leaves; the group is empty and can be deleted.
	for _, m := range []*shMember{a, b, d} {
		req := m.request()
		req.MemberEpoch = -1
		if resp := m.send(req); resp.ErrorCode != 0 || resp.MemberEpoch != -1 {
			t.Fatalf("leave %s: %+v", m.id, resp)
		}
	}
	if g := c2.ShareGroupDescribe(context.Background(), &kmsg.ShareGroupDescribeRequest{Version: 1, GroupIDs: []string{groupID}}).Groups[0]; g.GroupState != "Empty" {
		t.Fatalf("after everyone left: %s", g.GroupState)
	}
	key := metastore.SharePartitionKey{Group: groupID, Topic: shTopicID, Partition: 1}
	if err := f.store.SetShareStartOffset(context.Background(), key, 5); err != nil {
		t.Fatal(err)
	}
	if code := c2.DeleteGroups(context.Background(), &kmsg.DeleteGroupsRequest{Version: 2, Groups: []string{groupID}}).Groups[0].ErrorCode; code != 0 {
		t.Fatalf("delete the empty share group: %v", kerr.ErrorForCode(code))
	}
	if ps, err := f.store.SharePartitions(context.Background(), groupID); err != nil || len(ps) != 0 {
		t.Fatalf("share partitions after the group was deleted: %+v, %v", ps, err)
	}
}

func TestShareGroupNewPartitionsBumpEpoch(t *testing.T) {
	f := newFixture(t)
	ts := &cgTopics{list: []TopicInfo{{Name: topic, ID: cgTopicID, Partitions: 1}}}
	c := f.shareCoordinator(ts)
	a, b := newShMember(t, c, "a"), newShMember(t, c, "b")
	settleShare(a, b)
	if a.count() != 1 || b.count() != 1 {
		t.Fatalf("one partition, two members: %d and %d, want both to have it", a.count(), b.count())
	}
	ts.list[0].Partitions = 4
	epoch := a.epoch
	settleShare(a, b)
	if a.epoch == epoch || a.count() != 2 || b.count() != 2 {
		t.Fatalf("after growing to 4: epoch %d (was %d), %d and %d partitions", a.epoch, epoch, a.count(), b.count())
	}
}

func TestShareGroupInvalidRequests(t *testing.T) {
	f := newFixture(t)
	c := f.shareCoordinator(&cgTopics{})
	for name, tweak := range map[string]func(*kmsg.ShareGroupHeartbeatRequest){
		"empty group":      func(r *kmsg.ShareGroupHeartbeatRequest) { r.GroupID = "" },
		"empty member":     func(r *kmsg.ShareGroupHeartbeatRequest) { r.MemberID = "" },
		"no subscription":  func(r *kmsg.ShareGroupHeartbeatRequest) { r.SubscribedTopicNames = nil },
		"bad epoch":        func(r *kmsg.ShareGroupHeartbeatRequest) { r.MemberEpoch = -2 },
		"empty rack":       func(r *kmsg.ShareGroupHeartbeatRequest) { r.RackID = kmsg.StringPtr("") },
		"empty topic name": func(r *kmsg.ShareGroupHeartbeatRequest) { r.SubscribedTopicNames = []string{""} },
		"huge subscription": func(r *kmsg.ShareGroupHeartbeatRequest) {
			r.SubscribedTopicNames = make([]string, maxSubscribedTopics+1)
		},
	} {
		m := newShMember(t, c, "a")
		req := m.request()
		tweak(req)
		if resp := m.send(req); resp.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("%s: %v, want INVALID_REQUEST", name, kerr.ErrorForCode(resp.ErrorCode))
		}
	}
	// A consumer group's id is not a share group's.
	ts := &cgTopics{list: []TopicInfo{{Name: topic, ID: cgTopicID, Partitions: 1}}}
	c2 := f.coordinator(func(cfg *Config) { cfg.Topics = ts.get })
	cm := newCGMember(t, c2, "c")
	cm.heartbeat()
	m := newShMember(t, c2, "s")
	if resp := m.send(m.request()); resp.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("share heartbeat to a consumer group: %v, want GROUP_ID_NOT_FOUND", kerr.ErrorForCode(resp.ErrorCode))
	}
}

func TestShareGroupSessionExpiryAndMaxSize(t *testing.T) {
	f := newFixture(t)
	ts := &cgTopics{list: []TopicInfo{{Name: topic, ID: cgTopicID, Partitions: 4}}}
	c := f.coordinator(func(cfg *Config) {
		cfg.Topics = ts.get
		cfg.ShareSessionTimeout = 200 * time.Millisecond
		cfg.ShareHeartbeatInterval = 50 * time.Millisecond
		cfg.ShareMaxSize = 2
	})
	a, b := newShMember(t, c, "a"), newShMember(t, c, "b")
	settleShare(a, b)
	x := newShMember(t, c, "x")
	if resp := x.send(x.request()); resp.ErrorCode != kerr.GroupMaxSizeReached.Code {
		t.Fatalf("third member of a group of at most 2: %v, want GROUP_MAX_SIZE_REACHED", kerr.ErrorForCode(resp.ErrorCode))
	}
	poll.Until(t, "b expired and a has all four partitions", func() bool {
		a.heartbeat()
		return a.count() == 4
	})
	if resp := b.send(b.request()); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(resp.ErrorCode))
	}
}
