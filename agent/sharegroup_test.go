package agent_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/internal/poll"
)

// Share groups (KIP-932) over TCP: kmsg requests sent by a franz-go
// client, which routes ShareGroupHeartbeat to the group coordinator.

func shareGroupsOn(c *agent.Config) {
	c.GroupProtocols = []string{agent.GroupProtocolClassic, agent.GroupProtocolConsumer, agent.GroupProtocolShare}
	c.ShareHeartbeatInterval = 100 * time.Millisecond
	c.ShareSessionTimeout = 10 * time.Second
}

// shareMember is one share group member's view, heartbeating through a
// kgo client.
type shareMember struct {
	cl       *kgo.Client
	group    string
	id       string
	topics   []string
	epoch    int32
	assigned map[[16]byte][]int32
}

// heartbeat sends one heartbeat and adopts the answer as a client does.
// It returns the error code, or -1 for a transport error.
func (m *shareMember) heartbeat(ctx context.Context) int16 {
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.GroupID, req.MemberID, req.MemberEpoch = m.group, m.id, m.epoch
	if m.epoch == 0 {
		req.SubscribedTopicNames = m.topics
	}
	resp, err := req.RequestWith(ctx, m.cl)
	if err != nil {
		return -1
	}
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	m.epoch = resp.MemberEpoch
	if resp.Assignment != nil {
		m.assigned = map[[16]byte][]int32{}
		for _, tp := range resp.Assignment.TopicPartitions {
			m.assigned[tp.TopicID] = tp.Partitions
		}
	}
	return 0
}

func (m *shareMember) partitions() []int32 {
	var out []int32
	for _, ps := range m.assigned {
		out = append(out, ps...)
	}
	slices.Sort(out)
	return out
}

// TestShareGroupsOff: by default share groups are off: ApiVersions does
// not list their APIs nor finalize share.version, and a client that asks
// anyway is answered UNSUPPORTED_VERSION, not cut off.
func TestShareGroupsOff(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, nil)
	vreq := kmsg.NewPtrApiVersionsRequest()
	vreq.SetVersion(4)
	vreq.ClientSoftwareName, vreq.ClientSoftwareVersion = "test", "1"
	vresp := kmsg.NewPtrApiVersionsResponse()
	vresp.SetVersion(4)
	rawRequest(t, ta.addr, vreq, vresp)
	for _, k := range vresp.ApiKeys {
		if k.ApiKey == int16(kmsg.ShareGroupHeartbeat) || k.ApiKey == int16(kmsg.ShareGroupDescribe) {
			t.Fatalf("share groups are off but ApiVersions lists key %d", k.ApiKey)
		}
	}
	for _, f := range vresp.FinalizedFeatures {
		if f.Name == "share.version" {
			t.Fatalf("share groups are off but share.version is finalized at %d", f.MaxVersionLevel)
		}
	}
	hreq := kmsg.NewPtrShareGroupHeartbeatRequest()
	hreq.SetVersion(1)
	hreq.GroupID, hreq.MemberID, hreq.SubscribedTopicNames = "g", "m", []string{"t"}
	hresp := kmsg.NewPtrShareGroupHeartbeatResponse()
	hresp.SetVersion(1)
	rawRequest(t, ta.addr, hreq, hresp)
	if hresp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("ShareGroupHeartbeat with share groups off: %v, want UNSUPPORTED_VERSION", kerr.ErrorForCode(hresp.ErrorCode))
	}
}

// TestShareGroupMembership: with share groups on, two members of a group
// on a one-partition topic are both assigned the partition; ListGroups
// shows a share group, ShareGroupDescribe its members, DescribeGroups
// refuses it as Kafka does, and a member that leaves is gone.
func TestShareGroupMembership(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, shareGroupsOn)
	vreq := kmsg.NewPtrApiVersionsRequest()
	vreq.SetVersion(4)
	vreq.ClientSoftwareName, vreq.ClientSoftwareVersion = "test", "1"
	vresp := kmsg.NewPtrApiVersionsResponse()
	vresp.SetVersion(4)
	rawRequest(t, ta.addr, vreq, vresp)
	keys := map[int16]int16{}
	for _, k := range vresp.ApiKeys {
		keys[k.ApiKey] = k.MaxVersion
	}
	if keys[int16(kmsg.ShareGroupHeartbeat)] != 1 || keys[int16(kmsg.ShareGroupDescribe)] != 1 {
		t.Fatalf("ApiVersions: ShareGroupHeartbeat v%d, ShareGroupDescribe v%d", keys[76], keys[77])
	}

	cl := ta.client(t)
	createTopic(t, cl, "sg", 1, nil)
	ctx := context.Background()
	a := &shareMember{cl: cl, group: "sgg", id: "member-a", topics: []string{"sg"}}
	b := &shareMember{cl: cl, group: "sgg", id: "member-b", topics: []string{"sg"}}
	poll.Until(t, "both members hold partition 0 at one epoch", func() bool {
		if a.heartbeat(ctx) != 0 || b.heartbeat(ctx) != 0 {
			return false
		}
		return a.epoch == b.epoch && slices.Equal(a.partitions(), []int32{0}) && slices.Equal(b.partitions(), []int32{0})
	})

	adm := kadm.NewClient(cl)
	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.TypesFilter = []string{"share"}
	lresp, err := lreq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(lresp.Groups) != 1 || lresp.Groups[0].Group != "sgg" || lresp.Groups[0].ProtocolType != "share" || lresp.Groups[0].GroupType != "share" || lresp.Groups[0].GroupState != "Stable" {
		t.Fatalf("ListGroups of type share: %+v", lresp.Groups)
	}
	dreq := kmsg.NewPtrShareGroupDescribeRequest()
	dreq.GroupIDs = []string{"sgg"}
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if g := dresp.Groups[0]; g.ErrorCode != 0 || len(g.Members) != 2 || g.GroupState != "Stable" || g.Members[0].Assignment.TopicPartitions[0].Topic != "sg" {
		t.Fatalf("ShareGroupDescribe: %+v", dresp.Groups)
	}
	described, err := adm.DescribeGroups(ctx, "sgg")
	if err != nil {
		t.Fatal(err)
	}
	if g := described["sgg"]; g.State != "Dead" || (g.Err != nil && !errors.Is(g.Err, kerr.GroupIDNotFound)) {
		t.Fatalf("DescribeGroups of a share group: state %q, err %v; want Dead", g.State, g.Err)
	}

	leave := kmsg.NewPtrShareGroupHeartbeatRequest()
	leave.GroupID, leave.MemberID, leave.MemberEpoch = "sgg", b.id, -1
	if resp, err := leave.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 || resp.MemberEpoch != -1 {
		t.Fatalf("leave: %+v, %v", resp, err)
	}
	if code := b.heartbeat(ctx); code != kerr.UnknownMemberID.Code {
		t.Fatalf("a member that left heartbeats: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
	}
}

// TestShareGroupCoordinatorMoves: a share group survives its
// coordinating agent stopping: members heartbeat on at the new
// coordinator with the epoch they had, told at most NOT_COORDINATOR or
// COORDINATOR_NOT_AVAILABLE meanwhile.
func TestShareGroupCoordinatorMoves(t *testing.T) {
	t.Parallel()
	s := postgresMinIO.newStorage(t)
	var tas []*testAgent
	var seeds []string
	for i := range 3 {
		ta := startAgentOn(t, s.openStore(t), s.bucket, func(c *agent.Config) {
			c.ID = "agent-" + string(rune('a'+i))
			c.Zone = "z"
			c.Heartbeat = 50 * time.Millisecond
			c.MembershipTTL = 500 * time.Millisecond
			shareGroupsOn(c)
		})
		tas = append(tas, ta)
		seeds = append(seeds, ta.addr)
	}
	// The coordinator is chosen among the live agents: until all three
	// are listed, it moves as they join.
	for _, ta := range tas {
		poll.Until(t, "three brokers in every agent's metadata", func() bool { return len(brokerIDs(t, ta)) == 3 })
	}
	cl := tas[0].client(t, kgo.SeedBrokers(seeds...))
	createTopic(t, cl, "smv", 3, nil)
	ctx := context.Background()
	a := &shareMember{cl: cl, group: "smvg", id: "member-a", topics: []string{"smv"}}
	b := &shareMember{cl: cl, group: "smvg", id: "member-b", topics: []string{"smv"}}
	poll.Within(t, "two members split three partitions", time.Minute, func() bool {
		for _, m := range []*shareMember{a, b} {
			switch m.heartbeat(ctx) {
			case 0:
			case -1, kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code, kerr.CoordinatorLoadInProgress.Code:
				// On a loaded machine a late heartbeat can drop an agent
				// from the membership for a moment, and the coordinator
				// moves: look it up again (see below).
				m.cl = tas[0].client(t, kgo.SeedBrokers(seeds...))
				return false
			case kerr.UnknownMemberID.Code, kerr.FencedMemberEpoch.Code:
				m.epoch = 0 // joins again, as a share consumer does
				return false
			default:
				return false
			}
		}
		return a.epoch == b.epoch && len(a.partitions())+len(b.partitions()) == 3
	})
	epochA, epochB := a.epoch, b.epoch

	coords := kadm.NewClient(cl).FindGroupCoordinators(ctx, "smvg")
	if err := coords.Error(); err != nil {
		t.Fatalf("find coordinator: %v", err)
	}
	var victim *testAgent
	for _, ta := range tas {
		if nodeOf(t, ta) == coords["smvg"].NodeID {
			victim = ta
		}
	}
	if victim == nil {
		t.Fatalf("no agent is node %d", coords["smvg"].NodeID)
	}
	victim.stopOnce.Do(func() { victim.Close() })

	var live []string
	for _, ta := range tas {
		if ta != victim {
			live = append(live, ta.addr)
		}
	}
	for _, m := range []*shareMember{a, b} {
		poll.Within(t, "member "+m.id+" heartbeats at the new coordinator", 2*time.Minute, func() bool {
			switch code := m.heartbeat(ctx); code {
			case 0:
				return true
			case -1, kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code, kerr.CoordinatorLoadInProgress.Code:
				// kgo sends a (non-leaving) ShareGroupHeartbeat to the
				// coordinator it cached, and forgets it on no error: a
				// client, as its share consumer does, looks the
				// coordinator up again.
				m.cl = tas[0].client(t, kgo.SeedBrokers(live...))
				return false
			default:
				t.Fatalf("member %s told %v after the coordinator stopped; only NOT_COORDINATOR may show", m.id, kerr.ErrorForCode(code))
				return false
			}
		})
	}
	if a.epoch != epochA || b.epoch != epochB {
		t.Fatalf("epochs moved from %d, %d to %d, %d: the new coordinator did not resume the group as saved", epochA, epochB, a.epoch, b.epoch)
	}
}
