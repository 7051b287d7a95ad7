package agent_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/cluster"
	"github.com/siltstream/silt/internal/poll"
)

// Online migration between a classic group and a KIP-848 consumer group
// (group.consumer.migration.policy=bidirectional), driven by franz-go
// clients over TCP against three agents on Postgres and MinIO.

// ownership is who owns each partition, as the members' own callbacks
// report it: a member's revocation callback returns before it tells the
// coordinator, and its assignment callback runs after the coordinator
// told it, so a partition assigned while another member holds it is two
// owners at once.
type ownership struct {
	mu         sync.Mutex
	owner      map[int32]string
	held       map[string]int
	violations []string
	// While watching, a classic member's revocation that leaves it
	// nothing (a stop-the-world) is counted.
	watching bool
	emptied  map[string]int
}

func newOwnership() *ownership {
	return &ownership{owner: map[int32]string{}, held: map[string]int{}, emptied: map[string]int{}}
}

func (o *ownership) assigned(who string, ps []int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range ps {
		if cur, ok := o.owner[p]; ok && cur != who {
			o.violations = append(o.violations, fmt.Sprintf("partition %d assigned to %s while %s holds it", p, who, cur))
		}
		o.owner[p] = who
		o.held[who]++
	}
}

func (o *ownership) revoked(who string, ps []int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range ps {
		if o.owner[p] == who {
			delete(o.owner, p)
			o.held[who]--
		}
	}
	if o.watching && len(ps) > 0 && o.held[who] == 0 {
		o.emptied[who]++
	}
}

func (o *ownership) watch(on bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.watching = on
}

func (o *ownership) check(t *testing.T) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.violations) > 0 {
		t.Fatalf("two owners at once: %v", o.violations)
	}
}

// trackedConsumer is groupConsumer with its partitions also reported to o
// under the name who.
func trackedConsumer(t *testing.T, seeds []string, group, topic, who string, o *ownership, opts ...kgo.Opt) *groupConsumer {
	t.Helper()
	gc := &groupConsumer{owns: map[int32]bool{}, seen: map[string]int{}}
	drop := func(m map[string][]int32) {
		gc.mu.Lock()
		for _, p := range m[topic] {
			delete(gc.owns, p)
		}
		gc.mu.Unlock()
		o.revoked(who, m[topic])
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.AutoCommitInterval(100 * time.Millisecond),
		kgo.FetchMaxWait(200 * time.Millisecond),
		// franz-go keeps heartbeating a coordinator that stopped until a
		// metadata refresh drops it (see internal/e2e): refresh often.
		kgo.MetadataMinAge(time.Second), kgo.MetadataMaxAge(2 * time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			o.assigned(who, m[topic])
			gc.mu.Lock()
			defer gc.mu.Unlock()
			for _, p := range m[topic] {
				gc.owns[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			cl.CommitUncommittedOffsets(ctx)
			drop(m)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { drop(m) }),
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
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
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

// liveProducer produces one record per partition at a time until stopped,
// remembering every record acknowledged.
type liveProducer struct {
	mu    sync.Mutex
	acked []string
	stop  func()
}

func startLiveProducer(t *testing.T, cl *kgo.Client, topic string, partitions int32) *liveProducer {
	lp := &liveProducer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			var rs []*kgo.Record
			for p := range partitions {
				rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "live-%d-%d", p, i)})
			}
			for _, r := range cl.ProduceSync(ctx, rs...) {
				if r.Err == nil {
					lp.mu.Lock()
					lp.acked = append(lp.acked, string(r.Record.Value))
					lp.mu.Unlock()
				}
			}
		}
	}()
	var once sync.Once
	lp.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(lp.stop)
	return lp
}

func (lp *liveProducer) values() []string {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return append([]string(nil), lp.acked...)
}

// allSeen reports whether every value was read by some consumer.
func allSeen(values []string, cs ...*groupConsumer) bool {
	seen := map[string]bool{}
	for _, c := range cs {
		c.mu.Lock()
		for v := range c.seen {
			seen[v] = true
		}
		c.mu.Unlock()
	}
	for _, v := range values {
		if !seen[v] {
			return false
		}
	}
	return true
}

// atCoordinator sends req to the group's coordinator as FindCoordinator
// names it now (not as the client cached it: franz-go keeps a stopped
// coordinator cached until a metadata refresh drops it).
func atCoordinator(cl *kgo.Client, group string, req kmsg.Request) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	coords := kadm.NewClient(cl).FindGroupCoordinators(ctx, group)
	if err := coords.Error(); err != nil {
		return nil, err
	}
	return cl.Broker(int(coords[group].NodeID)).Request(ctx, req)
}

// memberTypes describes the group with ConsumerGroupDescribe v1 at its
// coordinator: member id → MemberType (0 classic, 1 consumer); ok false
// while it is not a consumer group (GROUP_ID_NOT_FOUND) or the request
// fails.
func memberTypes(cl *kgo.Client, group string) (types map[string]int8, ok bool) {
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.SetVersion(1)
	req.Groups = []string{group}
	r, err := atCoordinator(cl, group, req)
	if err != nil {
		return nil, false
	}
	resp := r.(*kmsg.ConsumerGroupDescribeResponse)
	if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
		return nil, false
	}
	types = map[string]int8{}
	for _, m := range resp.Groups[0].Members {
		types[m.MemberID] = m.MemberType
	}
	return types, true
}

// classicState describes the group with DescribeGroups at its
// coordinator: its state and protocol type, "" while it is not a
// classic group or the request fails.
func classicState(cl *kgo.Client, group string) (state, protocolType string, members int) {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	r, err := atCoordinator(cl, group, req)
	if err != nil {
		return "", "", 0
	}
	resp := r.(*kmsg.DescribeGroupsResponse)
	if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 || resp.Groups[0].State == "Dead" {
		return "", "", 0
	}
	g := resp.Groups[0]
	return g.State, g.ProtocolType, len(g.Members)
}

func countTypes(types map[string]int8) (classic, consumer int) {
	for _, t := range types {
		switch t {
		case 0:
			classic++
		case 1:
			consumer++
		}
	}
	return classic, consumer
}

// movingGroup is a group id that agents a, b and c place on one of them
// and that moves to agent d when it joins.
func movingGroup(t *testing.T) string {
	t.Helper()
	abc := &cluster.View{Brokers: []cluster.Broker{{ID: "agent-a"}, {ID: "agent-b"}, {ID: "agent-c"}}}
	abcd := &cluster.View{Brokers: append(abc.Brokers, cluster.Broker{ID: "agent-d"})}
	for i := range 1000 {
		id := fmt.Sprintf("migg-%d", i)
		if abcd.CoordinatorFor(id).ID == "agent-d" && abc.CoordinatorFor(id).ID != "agent-d" {
			return id
		}
	}
	t.Fatal("no group id moves to agent-d")
	return ""
}

// TestConsumerGroupOnlineMigration: two classic members consume a topic
// while records are produced; a third joins with the consumer protocol.
// The group becomes a consumer group whose classic members keep
// consuming: with franz-go's cooperative-sticky balancer neither is ever
// left with nothing by a revocation (no stop-the-world); with the eager
// range balancer they give up everything at each rebalance, as eager
// members do, and still never share a partition. While the three
// reconcile, a fourth agent joins the cluster and the group's
// coordination moves to it (the previous coordinator answers
// NOT_COORDINATOR); the group resumes there from the store and the three
// split the partitions. Then that agent stops and another resumes the
// group. Then the consumer-protocol member leaves and the group is
// classic again, split between the two. Every record
// acknowledged is read, and no partition ever has two owners.
func TestConsumerGroupOnlineMigration(t *testing.T) {
	t.Parallel()
	t.Run("cooperative", func(t *testing.T) {
		t.Parallel()
		testOnlineMigration(t, kgo.CooperativeStickyBalancer(), true)
	})
	t.Run("eager", func(t *testing.T) {
		t.Parallel()
		testOnlineMigration(t, kgo.RangeBalancer(), false)
	})
}

// testOnlineMigration runs TestConsumerGroupOnlineMigration with classic
// members of the balancer classic; incremental says whether it is
// cooperative (no member ever left with nothing).
func testOnlineMigration(t *testing.T, classic kgo.GroupBalancer, incremental bool) {
	s := postgresMinIO.newStorage(t)
	start := func(id string) *testAgent {
		return startAgentOn(t, s.openStore(t), s.bucket, func(c *agent.Config) {
			c.ID = id
			c.Zone = "z"
			c.Heartbeat = 50 * time.Millisecond
			c.MembershipTTL = 500 * time.Millisecond
			consumerGroupsOn(c)
		})
	}
	var tas []*testAgent
	for _, id := range []string{"agent-a", "agent-b", "agent-c"} {
		tas = append(tas, start(id))
	}
	var seeds []string
	for _, ta := range tas {
		seeds = append(seeds, ta.addr)
	}
	group := movingGroup(t)
	const topic = "mig"
	cl := tas[0].client(t, kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, topic, 6, nil)
	produceN(t, cl, topic, 6, 10, "first-")

	o := newOwnership()
	classicOpts := []kgo.Opt{kgo.Balancers(classic)}
	c1 := trackedConsumer(t, seeds, group, topic, "classic-1", o, classicOpts...)
	c2 := trackedConsumer(t, seeds, group, topic, "classic-2", o, classicOpts...)
	poll.Within(t, "two classic members split six partitions and read everything", 2*time.Minute, func() bool {
		return disjointCover(6, c1, c2) && len(c1.owned()) == 3 && seenWith("first-", c1, c2) == 60
	})
	if state, ptype, n := classicState(cl, group); state != "Stable" || ptype != "consumer" || n != 2 {
		t.Fatalf("classic group: %s, protocol type %q, %d members", state, ptype, n)
	}

	// The upgrade, under load.
	lp := startLiveProducer(t, cl, topic, 6)
	o.watch(true)
	c3 := trackedConsumer(t, seeds, group, topic, "consumer-3", o,
		kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer()))
	poll.Within(t, "the group is a consumer group of two classic members and one consumer member", 2*time.Minute, func() bool {
		types, ok := memberTypes(cl, group)
		classic, consumer := countTypes(types)
		return ok && classic == 2 && consumer == 1
	})
	o.check(t)

	// The coordination moves while the members reconcile.
	d := start("agent-d")
	adm := kadm.NewClient(cl)
	poll.Within(t, "agent-d coordinates the group", 2*time.Minute, func() bool {
		coords := adm.FindGroupCoordinators(context.Background(), group)
		return coords.Error() == nil && coords[group].NodeID == nodeOf(t, d)
	})
	poll.Within(t, "three members split six partitions on the new coordinator", 3*time.Minute, func() bool {
		return disjointCover(6, c1, c2, c3) && len(c1.owned()) == 2 && len(c2.owned()) == 2 && len(c3.owned()) == 2
	})
	o.check(t)
	o.watch(false)
	o.mu.Lock()
	emptied := fmt.Sprint(o.emptied)
	stw := o.emptied["classic-1"] + o.emptied["classic-2"]
	o.mu.Unlock()
	if incremental && stw > 0 {
		t.Fatalf("a classic member was left with no partition by a revocation during the upgrade: %s", emptied)
	}
	poll.Within(t, "the consumer group described at its new coordinator", time.Minute, func() bool {
		types, ok := memberTypes(cl, group)
		classic, consumer := countTypes(types)
		return ok && classic == 2 && consumer == 1
	})

	// The coordinator stops: another agent loads the group as saved, a
	// consumer group with two classic members, and serves the rest.
	dNode := nodeOf(t, d)
	d.stopOnce.Do(func() { d.Close() })
	poll.Within(t, "another agent coordinates the group", 2*time.Minute, func() bool {
		coords := adm.FindGroupCoordinators(context.Background(), group)
		return coords.Error() == nil && coords[group].NodeID != dNode
	})
	poll.Within(t, "the consumer group described at the next coordinator", 2*time.Minute, func() bool {
		types, ok := memberTypes(cl, group)
		classic, consumer := countTypes(types)
		return ok && classic == 2 && consumer == 1
	})

	// The downgrade, at the next coordinator: the consumer-protocol
	// member leaves.
	c3.stop()
	poll.Within(t, "the group is classic again, its two members splitting six partitions", 3*time.Minute, func() bool {
		state, ptype, n := classicState(cl, group)
		return state == "Stable" && ptype == "consumer" && n == 2 && disjointCover(6, c1, c2) && len(c1.owned()) == 3
	})
	o.check(t)

	lp.stop()
	produceN(t, cl, topic, 6, 10, "last-")
	acked := lp.values()
	if len(acked) < 6 {
		t.Fatalf("only %d records acknowledged while the group migrated", len(acked))
	}
	for p := range 6 {
		for i := range 10 {
			acked = append(acked, fmt.Sprintf("last-%d-%d", p, i))
		}
	}
	poll.Within(t, "every acknowledged record read", 2*time.Minute, func() bool {
		return allSeen(acked, c1, c2, c3)
	})
	o.check(t)
}
