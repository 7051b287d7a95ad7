package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/internal/poll"
)

// Consumer groups (KIP-848) driven by franz-go clients opted into the
// protocol (kgo.ServerSideBalancer with a range balancer), against agents
// with group.coordinator.rebalance.protocols=classic,consumer and a short
// heartbeat interval so reconciliation takes fractions of a second.

func consumerGroupsOn(c *agent.Config) {
	c.GroupProtocols = []string{agent.GroupProtocolClassic, agent.GroupProtocolConsumer}
	c.ConsumerHeartbeatInterval = 100 * time.Millisecond
	c.ConsumerSessionTimeout = 10 * time.Second
}

// kip848 are the client options that make a kgo group member use
// ConsumerGroupHeartbeat.
func kip848() []kgo.Opt {
	return []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer())}
}

// disjointCover reports whether the consumers' partitions cover 0..n-1
// with each partition owned exactly once.
func disjointCover(n int32, cs ...*groupConsumer) bool {
	seen := map[int32]bool{}
	for _, c := range cs {
		for p := range c.owned() {
			if seen[p] {
				return false
			}
			seen[p] = true
		}
	}
	return len(seen) == int(n)
}

// readOnce fails unless every record with prefix was read exactly once
// across the consumers.
func readOnce(t *testing.T, prefix string, want int, cs ...*groupConsumer) {
	t.Helper()
	counts := map[string]int{}
	for _, c := range cs {
		c.mu.Lock()
		for v, n := range c.seen {
			if strings.HasPrefix(v, prefix) {
				counts[v] += n
			}
		}
		c.mu.Unlock()
	}
	if len(counts) != want {
		t.Fatalf("%d distinct %s records read, want %d", len(counts), prefix, want)
	}
	for v, n := range counts {
		if n != 1 {
			t.Fatalf("record %s read %d times", v, n)
		}
	}
}

func seenWith(prefix string, cs ...*groupConsumer) int {
	n := 0
	for _, c := range cs {
		c.mu.Lock()
		for v := range c.seen {
			if strings.HasPrefix(v, prefix) {
				n++
			}
		}
		c.mu.Unlock()
	}
	return n
}

func TestConsumerGroup848(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, consumerGroupsOn)
	// ApiVersions advertises the APIs and finalizes group.version 1, as
	// Kafka 4 does.
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
	fin := map[string]int16{}
	for _, f := range vresp.FinalizedFeatures {
		fin[f.Name] = f.MaxVersionLevel
	}
	if keys[int16(kmsg.ConsumerGroupHeartbeat)] != 1 || keys[int16(kmsg.ConsumerGroupDescribe)] != 1 || fin["group.version"] != 1 {
		t.Fatalf("ApiVersions: heartbeat v%d, describe v%d, finalized %v", keys[68], keys[69], fin)
	}
	ureq := kmsg.NewPtrUpdateFeaturesRequest()
	ureq.SetVersion(1)
	u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	u.Feature, u.MaxVersionLevel, u.UpgradeType = "group.version", 1, 1
	ureq.FeatureUpdates = append(ureq.FeatureUpdates, u)
	uresp := kmsg.NewPtrUpdateFeaturesResponse()
	uresp.SetVersion(1)
	rawRequest(t, ta.addr, ureq, uresp)
	if len(uresp.Results) != 1 || uresp.Results[0].ErrorCode != 0 {
		t.Fatalf("UpdateFeatures group.version to the level in force, 1: %+v", uresp)
	}

	cl := ta.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "cg", 12, nil)
	produceN(t, cl, "cg", 12, 20, "first-")

	c1 := ta.groupConsumer(t, "cg1", "cg", kip848()...)
	poll.Until(t, "c1 owns all 12 partitions and read everything", func() bool {
		return len(c1.owned()) == 12 && seenWith("first-", c1) == 240
	})
	c2 := ta.groupConsumer(t, "cg1", "cg", kip848()...)
	c3 := ta.groupConsumer(t, "cg1", "cg", kip848()...)
	poll.Until(t, "three members own four partitions each", func() bool {
		return disjointCover(12, c1, c2, c3) && len(c1.owned()) == 4 && len(c2.owned()) == 4 && len(c3.owned()) == 4
	})
	produceN(t, cl, "cg", 12, 20, "second-")
	poll.Until(t, "the second batch read", func() bool { return seenWith("second-", c1, c2, c3) == 240 })
	readOnce(t, "second-", 240, c1, c2, c3)

	// The group as ConsumerGroupDescribe, ListGroups and DescribeGroups
	// show it.
	dreq := kmsg.NewPtrConsumerGroupDescribeRequest()
	dreq.SetVersion(1)
	dreq.Groups = []string{"cg1"}
	dresp := kmsg.NewPtrConsumerGroupDescribeResponse()
	dresp.SetVersion(1)
	rawRequest(t, ta.addr, dreq, dresp)
	if len(dresp.Groups) != 1 || dresp.Groups[0].ErrorCode != 0 || len(dresp.Groups[0].Members) != 3 || dresp.Groups[0].State != "Stable" {
		t.Fatalf("ConsumerGroupDescribe: %+v", dresp)
	}
	dg := dresp.Groups[0]
	if dg.AssignorName != "range" {
		t.Errorf("assignor %q, want range", dg.AssignorName)
	}
	m := dg.Members[0]
	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.SetVersion(5)
	lreq.TypesFilter = []string{"consumer"}
	lresp := kmsg.NewPtrListGroupsResponse()
	lresp.SetVersion(5)
	rawRequest(t, ta.addr, lreq, lresp)
	if len(lresp.Groups) != 1 || lresp.Groups[0].Group != "cg1" || lresp.Groups[0].GroupType != "consumer" {
		t.Fatalf("ListGroups of type consumer: %+v", lresp.Groups)
	}
	lreq.TypesFilter = []string{"classic"}
	lresp = kmsg.NewPtrListGroupsResponse()
	lresp.SetVersion(5)
	rawRequest(t, ta.addr, lreq, lresp)
	for _, g := range lresp.Groups {
		if g.Group == "cg1" {
			t.Fatalf("ListGroups of type classic lists consumer group cg1")
		}
	}

	// A heartbeat ahead of the member's epoch is fenced; an unknown
	// member is told so.
	hb := func(member string, epoch int32) int16 {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.SetVersion(1)
		req.Group, req.MemberID, req.MemberEpoch = "cg1", member, epoch
		resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
		resp.SetVersion(1)
		rawRequest(t, ta.addr, req, resp)
		return resp.ErrorCode
	}
	if code := hb(m.MemberID, m.MemberEpoch+5); code != kerr.FencedMemberEpoch.Code {
		t.Errorf("heartbeat ahead of the epoch: %v, want FENCED_MEMBER_EPOCH", kerr.ErrorForCode(code))
	}
	if code := hb("nobody", 3); code != kerr.UnknownMemberID.Code {
		t.Errorf("unknown member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
	}
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteGroup(context.Background(), "cg1"); !strings.Contains(fmt.Sprint(err), kerr.NonEmptyGroup.Message) {
		t.Errorf("DeleteGroup of a group with members: %v, want NON_EMPTY_GROUP", err)
	}

	// A member leaves: the others take its partitions, revoking first.
	c3.stop()
	poll.Until(t, "two members own all 12 partitions", func() bool {
		return disjointCover(12, c1, c2) && len(c1.owned()) == 6
	})
	produceN(t, cl, "cg", 12, 20, "third-")
	poll.Until(t, "the third batch read", func() bool { return seenWith("third-", c1, c2) == 240 })
	readOnce(t, "third-", 240, c1, c2)

	// Committed offsets are the group's: kadm sees them.
	offs, err := adm.FetchOffsets(context.Background(), "cg1")
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the group's commits reach the end of every partition", func() bool {
		offs, err = adm.FetchOffsets(context.Background(), "cg1")
		if err != nil {
			return false
		}
		for p := int32(0); p < 12; p++ {
			if o, ok := offs.Lookup("cg", p); !ok || o.At != 60 {
				return false
			}
		}
		return true
	})
	c1.stop()
	c2.stop()
	poll.Until(t, "the empty group can be deleted", func() bool {
		_, err := adm.DeleteGroup(context.Background(), "cg1")
		return err == nil
	})
}

// TestConsumerGroup848Regex: a regex subscription, resolved by the
// agent, picks up a topic created after the member joined.
func TestConsumerGroup848Regex(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, consumerGroupsOn)
	cl := ta.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "rx-a", 2, nil)
	produceN(t, cl, "rx-a", 2, 5, "a-")
	opts := append(kip848(), kgo.ConsumeRegex(), kgo.MetadataMinAge(100*time.Millisecond))
	c := ta.groupConsumer(t, "rx", "rx-.*", opts...)
	poll.Until(t, "rx-a read", func() bool { return seenWith("a-", c) == 10 })
	createTopic(t, cl, "rx-b", 3, nil)
	produceN(t, cl, "rx-b", 3, 5, "b-")
	poll.Until(t, "rx-b, created later, read", func() bool { return seenWith("b-", c) == 15 })
}

// TestConsumerGroup848CoordinatorMoves: the group survives its
// coordinating agent stopping abruptly; members carry on with what the
// store holds, and every record is read.
func TestConsumerGroup848CoordinatorMoves(t *testing.T) {
	t.Parallel()
	s := postgresMinIO.newStorage(t)
	var tas []*testAgent
	for i := range 3 {
		tas = append(tas, startAgentOn(t, s.openStore(t), s.bucket, func(c *agent.Config) {
			c.ID = "agent-" + string(rune('a'+i))
			c.Zone = "z"
			c.Heartbeat = 50 * time.Millisecond
			c.MembershipTTL = 500 * time.Millisecond
			consumerGroupsOn(c)
		}))
	}
	var seeds []string
	for _, ta := range tas {
		seeds = append(seeds, ta.addr)
		// The coordinator and the leaders are chosen among the live
		// agents: until all three are listed, they move as agents join.
		poll.Until(t, "three brokers in every agent's metadata", func() bool { return len(brokerIDs(t, ta)) == 3 })
	}
	cl := tas[0].client(t, kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "mv", 6, nil)
	produceN(t, cl, "mv", 6, 10, "first-")
	c1 := tas[0].groupConsumer(t, "mvg", "mv", append(kip848(), kgo.SeedBrokers(seeds...))...)
	c2 := tas[0].groupConsumer(t, "mvg", "mv", append(kip848(), kgo.SeedBrokers(seeds...))...)
	poll.WithinSaying(t, "two members split six partitions and read everything", 2*time.Minute, func() bool {
		return disjointCover(6, c1, c2) && len(c1.owned()) == 3 && seenWith("first-", c1, c2) == 60
	}, func() string {
		// Failed once in a fresh-clone CI run, not reproduced since.
		return fmt.Sprintf("member 1 owns %v, member 2 owns %v, %d of 60 records read", c1.owned(), c2.owned(), seenWith("first-", c1, c2))
	})

	adm := kadm.NewClient(cl)
	coords := adm.FindGroupCoordinators(context.Background(), "mvg")
	if err := coords.Error(); err != nil {
		t.Fatalf("find coordinator: %v", err)
	}
	coordinator := coords["mvg"].NodeID
	var victim *testAgent
	for _, ta := range tas {
		if nodeOf(t, ta) == coordinator {
			victim = ta
		}
	}
	if victim == nil {
		t.Fatalf("no agent is node %d", coordinator)
	}
	victim.stopOnce.Do(func() { victim.Close() })

	produceN(t, cl, "mv", 6, 10, "second-")
	// Generous deadlines: a client finds the new coordinator only once
	// its metadata forgets the stopped agent, which a loaded machine
	// (the race detector, parallel tests) can stretch.
	poll.Within(t, "the second batch read after the coordinator stopped", 2*time.Minute, func() bool {
		return seenWith("second-", c1, c2) == 60
	})
	readOnce(t, "second-", 60, c1, c2)
	poll.Within(t, "the members still split the partitions", 2*time.Minute, func() bool {
		return disjointCover(6, c1, c2) && len(c1.owned()) == 3
	})
}
