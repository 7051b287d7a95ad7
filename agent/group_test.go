package agent_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupEventually waits for cond, checking often; groups move on client
// heartbeats (every few seconds), so the deadline is generous.
func groupEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func produceN(t *testing.T, cl *kgo.Client, topic string, partitions int32, perPartition int, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for p := int32(0); p < partitions; p++ {
		for i := 0; i < perPartition; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf("%s%d-%d", prefix, p, i))})
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// groupConsumer is a kgo group member that records what it owns and reads.
type groupConsumer struct {
	cl   *kgo.Client
	mu   sync.Mutex
	owns map[int32]bool
	seen map[string]int // value → times read
	stop func()
}

func (ta *testAgent) groupConsumer(t *testing.T, group, topic string, opts ...kgo.Opt) *groupConsumer {
	t.Helper()
	gc := &groupConsumer{owns: map[int32]bool{}, seen: map[string]int{}}
	base := []kgo.Opt{
		kgo.SeedBrokers(ta.addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.AutoCommitInterval(100 * time.Millisecond),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			gc.mu.Lock()
			defer gc.mu.Unlock()
			for _, p := range m[topic] {
				gc.owns[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			cl.CommitMarkedOffsets(ctx)
			gc.mu.Lock()
			defer gc.mu.Unlock()
			for _, p := range m[topic] {
				delete(gc.owns, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			gc.mu.Lock()
			defer gc.mu.Unlock()
			for _, p := range m[topic] {
				delete(gc.owns, p)
			}
		}),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	gc.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				gc.mu.Lock()
				gc.seen[string(r.Value)]++
				gc.mu.Unlock()
			})
		}
	}()
	var once sync.Once
	gc.stop = func() { once.Do(func() { cancel(); <-done; cl.Close() }) }
	t.Cleanup(gc.stop)
	return gc
}

func (gc *groupConsumer) owned() map[int32]bool {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	out := map[int32]bool{}
	for p := range gc.owns {
		out[p] = true
	}
	return out
}

func (gc *groupConsumer) count() int {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	return len(gc.seen)
}

func TestGroupRebalanceSplitsAndLeaves(t *testing.T) {
	forEachBackend(t, testGroupRebalanceSplitsAndLeaves)
}

func testGroupRebalanceSplitsAndLeaves(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "gt", 6, nil)
	produceN(t, cl, "gt", 6, 50, "")

	c1 := ta.groupConsumer(t, "g1", "gt")
	groupEventually(t, "c1 owns all 6 partitions and read everything", func() bool {
		return len(c1.owned()) == 6 && c1.count() == 300
	})

	c2 := ta.groupConsumer(t, "g1", "gt")
	groupEventually(t, "the partitions split between c1 and c2", func() bool {
		o1, o2 := c1.owned(), c2.owned()
		if len(o1) == 0 || len(o2) == 0 || len(o1)+len(o2) != 6 {
			return false
		}
		for p := range o1 {
			if o2[p] {
				return false
			}
		}
		return true
	})
	// After the rebalance nothing is read twice: c2 starts from c1's commits.
	produceN(t, cl, "gt", 6, 10, "second-")
	groupEventually(t, "the new records read", func() bool { return c1.count()+c2.count() >= 360 })
	time.Sleep(300 * time.Millisecond)
	c1.mu.Lock()
	c2.mu.Lock()
	for v := range c2.seen {
		if c1.seen[v] > 0 && strings.HasPrefix(v, "second-") {
			t.Errorf("record %s read by both members", v)
		}
	}
	c2.mu.Unlock()
	c1.mu.Unlock()

	c1.stop()
	groupEventually(t, "c2 owns everything after c1 leaves", func() bool { return len(c2.owned()) == 6 })

	// The group and its commits are in the store.
	g, ok, err := ta.store.Group(context.Background(), "g1")
	if err != nil || !ok || g.State != "Stable" || len(g.Members) != 1 {
		t.Fatalf("stored group = %+v, %v, %v", g, ok, err)
	}
}

func TestGroupResumesFromCommittedOffsets(t *testing.T) {
	forEachBackend(t, testGroupResumesFromCommittedOffsets)
}

func testGroupResumesFromCommittedOffsets(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "resume", 3, nil)
	produceN(t, cl, "resume", 3, 20, "")

	c1 := ta.groupConsumer(t, "rg", "resume")
	groupEventually(t, "first consumer reads everything", func() bool { return c1.count() == 60 })
	adm := kadm.NewClient(cl)
	groupEventually(t, "offsets committed", func() bool {
		os, err := adm.FetchOffsets(context.Background(), "rg")
		if err != nil || os.Error() != nil {
			return false
		}
		n := 0
		os.Each(func(o kadm.OffsetResponse) { n += int(o.At) })
		return n == 60
	})
	c1.stop()

	produceN(t, cl, "resume", 3, 5, "second-")
	c2 := ta.groupConsumer(t, "rg", "resume")
	groupEventually(t, "second consumer reads the new records", func() bool { return c2.count() == 15 })
	time.Sleep(300 * time.Millisecond)
	if n := c2.count(); n != 15 {
		t.Fatalf("restarted consumer read %d records, want only the 15 new ones", n)
	}
}

func TestGroupStaticMemberRejoinsWithoutRebalance(t *testing.T) {
	forEachBackend(t, testGroupStaticMemberRejoinsWithoutRebalance)
}

func testGroupStaticMemberRejoinsWithoutRebalance(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "static", 4, nil)

	a := ta.groupConsumer(t, "sg", "static", kgo.InstanceID("a"))
	b := ta.groupConsumer(t, "sg", "static", kgo.InstanceID("b"))
	groupEventually(t, "both static members own partitions", func() bool {
		return len(a.owned()) == 2 && len(b.owned()) == 2
	})
	ctx := context.Background()
	before, _, err := ta.store.Group(ctx, "sg")
	if err != nil {
		t.Fatal(err)
	}
	owned := b.owned()
	b.stop() // static members do not leave on close

	b2 := ta.groupConsumer(t, "sg", "static", kgo.InstanceID("b"))
	groupEventually(t, "b's replacement owns b's partitions", func() bool {
		o := b2.owned()
		if len(o) != len(owned) {
			return false
		}
		for p := range owned {
			if !o[p] {
				return false
			}
		}
		return true
	})
	after, _, err := ta.store.Group(ctx, "sg")
	if err != nil {
		t.Fatal(err)
	}
	if after.Generation != before.Generation {
		t.Fatalf("generation moved %d → %d: the static rejoin rebalanced", before.Generation, after.Generation)
	}
	if len(a.owned()) != 2 {
		t.Fatalf("a lost partitions: %v", a.owned())
	}
}

func TestGroupAdmin(t *testing.T) {
	forEachBackend(t, testGroupAdmin)
}

func testGroupAdmin(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	createTopic(t, cl, "adm", 2, nil)
	produceN(t, cl, "adm", 2, 10, "")

	c := ta.groupConsumer(t, "ag", "adm")
	groupEventually(t, "the consumer reads and commits", func() bool {
		os, err := adm.FetchOffsets(ctx, "ag")
		return err == nil && len(os) == 1 && len(os["adm"]) == 2 && os["adm"][0].At == 10 && os["adm"][1].At == 10
	})

	ds, err := adm.DescribeGroups(ctx, "ag", "nope")
	if err != nil {
		t.Fatal(err)
	}
	if d := ds["ag"]; d.Err != nil || d.State != "Stable" || d.ProtocolType != "consumer" || len(d.Members) != 1 {
		t.Fatalf("describe ag = %+v", d)
	}
	if d := ds["nope"]; d.State != "Dead" {
		t.Fatalf("describe of an unknown group: state %q", d.State)
	}
	ls, err := adm.ListGroups(ctx)
	if err != nil || len(ls) != 1 || ls["ag"].State != "Stable" {
		t.Fatalf("ListGroups = %+v, %v", ls, err)
	}
	ls, err = adm.ListGroups(ctx, "Empty")
	if err != nil || len(ls) != 0 {
		t.Fatalf("ListGroups(Empty) = %+v, %v", ls, err)
	}

	// Subscribed topics' offsets cannot be deleted, nor a group with members.
	dr, err := adm.DeleteOffsets(ctx, "ag", kadm.TopicsSet{"adm": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := dr.Error(); err != kerr.GroupSubscribedToTopic {
		t.Fatalf("DeleteOffsets of a subscribed topic: %v", err)
	}
	dg, _ := adm.DeleteGroup(ctx, "ag")
	if dg.Err != kerr.NonEmptyGroup {
		t.Fatalf("DeleteGroup of a live group: %+v, %v", dg, err)
	}

	c.stop()
	groupEventually(t, "the group empties", func() bool {
		ls, err := adm.ListGroups(ctx, "Empty")
		return err == nil && len(ls) == 1
	})
	dr, err = adm.DeleteOffsets(ctx, "ag", kadm.TopicsSet{"adm": {0: {}}, "missing": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if dr["adm"][0] != nil || dr["missing"][0] != kerr.UnknownTopicOrPartition {
		t.Fatalf("DeleteOffsets = %+v", dr)
	}
	os, err := adm.FetchOffsets(ctx, "ag")
	if err != nil || len(os["adm"]) != 1 || os["adm"][1].At != 10 {
		t.Fatalf("offsets after DeleteOffsets = %+v, %v", os, err)
	}
	dg, err = adm.DeleteGroup(ctx, "ag")
	if err != nil || dg.Err != nil {
		t.Fatalf("DeleteGroup: %+v, %v", dg, err)
	}
	dg, _ = adm.DeleteGroup(ctx, "ag")
	if dg.Err != kerr.GroupIDNotFound {
		t.Fatalf("second DeleteGroup: %+v, %v", dg, err)
	}
	os, err = adm.FetchOffsets(ctx, "ag")
	if err != nil || len(os) != 0 {
		t.Fatalf("offsets after DeleteGroup = %+v, %v", os, err)
	}
}

// rawMember drives the classic protocol by hand.
type rawMember struct {
	t     *testing.T
	cl    *kgo.Client
	group string
	id    string
	gen   int32
}

func (m *rawMember) join(version int16) *kmsg.JoinGroupResponse {
	m.t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = version
	req.Group, req.MemberID = m.group, m.id
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 1000
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{"raw"}
	p.Metadata = md.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	resp, err := req.RequestWith(context.Background(), m.cl)
	if err != nil {
		m.t.Fatal(err)
	}
	if resp.ErrorCode == 0 {
		m.id, m.gen = resp.MemberID, resp.Generation
	}
	return resp
}

func (m *rawMember) sync(assign bool) int16 {
	m.t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = m.group, m.id, m.gen
	if assign {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = m.id, []byte{0, 1}
		req.GroupAssignment = append(req.GroupAssignment, a)
	}
	resp, err := req.RequestWith(context.Background(), m.cl)
	if err != nil {
		m.t.Fatal(err)
	}
	return resp.ErrorCode
}

func (m *rawMember) heartbeat(id string, gen int32) int16 {
	m.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation = m.group, id, gen
	resp, err := req.RequestWith(context.Background(), m.cl)
	if err != nil {
		m.t.Fatal(err)
	}
	return resp.ErrorCode
}

func (m *rawMember) commit(id string, gen int32, offset int64) int16 {
	m.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.MemberID, req.Generation = m.group, id, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "raw"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), m.cl)
	if err != nil {
		m.t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

func TestGroupErrorCodes(t *testing.T) {
	forEachBackend(t, testGroupErrorCodes)
}

func testGroupErrorCodes(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "raw", 1, nil)
	m := &rawMember{t: t, cl: cl, group: "eg"}

	if r := m.join(4); r.ErrorCode != kerr.MemberIDRequired.Code || r.MemberID == "" {
		t.Fatalf("v4 join without member id: %v %q, want MEMBER_ID_REQUIRED with an id", kerr.ErrorForCode(r.ErrorCode), r.MemberID)
	} else {
		m.id = r.MemberID
	}
	if r := m.join(4); r.ErrorCode != 0 || r.LeaderID != m.id || len(r.Members) != 1 || r.Generation != 1 {
		t.Fatalf("join: %+v", r)
	}
	if code := m.commit(m.id, m.gen, 1); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("commit before sync: %v", kerr.ErrorForCode(code))
	}
	if code := m.sync(true); code != 0 {
		t.Fatalf("sync: %v", kerr.ErrorForCode(code))
	}
	for _, tc := range []struct {
		what string
		id   string
		gen  int32
		want int16
	}{
		{"current", m.id, m.gen, 0},
		{"stale generation", m.id, m.gen - 1, kerr.IllegalGeneration.Code},
		{"unknown member", "who", m.gen, kerr.UnknownMemberID.Code},
	} {
		if code := m.heartbeat(tc.id, tc.gen); code != tc.want {
			t.Errorf("heartbeat %s: %v, want %v", tc.what, kerr.ErrorForCode(code), kerr.ErrorForCode(tc.want))
		}
		if code := m.commit(tc.id, tc.gen, 5); code != tc.want {
			t.Errorf("commit %s: %v, want %v", tc.what, kerr.ErrorForCode(code), kerr.ErrorForCode(tc.want))
		}
	}
	if code := m.commit("", -1, 7); code != kerr.UnknownMemberID.Code {
		t.Errorf("simple commit to a group with members: %v", kerr.ErrorForCode(code))
	}
	bad := &rawMember{t: t, cl: cl, group: "eg", id: "x"}
	if code := bad.sync(false); code != kerr.UnknownMemberID.Code {
		t.Errorf("sync by an unknown member: %v", kerr.ErrorForCode(code))
	}

	// Another agent moves the group on in the store (it believed it was the
	// coordinator). This agent's member can no longer commit, even though
	// this agent's memory still says generation 1...
	ctx := context.Background()
	g, _, err := ta.store.Group(ctx, "eg")
	if err != nil {
		t.Fatal(err)
	}
	g.Generation++
	if err := ta.store.SaveGroup(ctx, g, g.Generation-1); err != nil {
		t.Fatal(err)
	}
	if code := m.commit(m.id, m.gen, 9); code != kerr.IllegalGeneration.Code {
		t.Fatalf("commit after another agent advanced the group: %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(code))
	}
	// ...: the store refuses it, the agent drops the group (the client,
	// told NOT_COORDINATOR, retries) and answers from the group reloaded
	// from the store. The member is still there, at the other agent's
	// generation.
	if code := m.heartbeat(m.id, g.Generation); code != 0 {
		t.Fatalf("heartbeat at the stored generation: %v", kerr.ErrorForCode(code))
	}
	if code := m.heartbeat(m.id, m.gen); code != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat with the fenced generation: %v", kerr.ErrorForCode(code))
	}
	os, _ := ta.store.FetchOffsets(ctx, "eg")
	if len(os) != 1 || os[0].Offset != 5 {
		t.Fatalf("offsets = %+v, want the one accepted commit (5)", os)
	}

	// Simple commits to a group nobody manages.
	s := &rawMember{t: t, cl: cl, group: "simple"}
	if code := s.commit("", -1, 3); code != 0 {
		t.Fatalf("simple commit: %v", kerr.ErrorForCode(code))
	}
	if code := s.commit("m", 2, 3); code != kerr.IllegalGeneration.Code {
		t.Fatalf("generation commit to an unmanaged group: %v", kerr.ErrorForCode(code))
	}
}
