package agent_test

import (
	"context"
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

// startCluster starts agents named after zones on one database and one
// bucket, with fast heartbeats. Clusters run on postgres-minio only: agents
// sharing a store learn of each other's commits from Postgres
// notifications, which SQLite has no equivalent of.
func startCluster(t *testing.T, zones ...string) []*testAgent {
	t.Helper()
	s := postgresMinIO.newStorage(t)
	var out []*testAgent
	for i, z := range zones {
		out = append(out, startAgentOn(t, s.openStore(t), s.bucket, func(c *agent.Config) {
			c.ID = "agent-" + string(rune('a'+i))
			c.Zone = z
			// Fast heartbeats, so joins show up at once; a lease of 40 of
			// them, so a machine loaded enough to starve a few heartbeats
			// does not drop live agents (a reassignment naming one was
			// refused as unregistered with 500 ms at a load average of 18).
			c.Heartbeat = 50 * time.Millisecond
			c.MembershipTTL = 2 * time.Second
		}))
	}
	return out
}

// metadata asks ta afresh (kgo clients cache metadata, so each call uses a
// new client).
func metadata(t *testing.T, ta *testAgent, clientID string, topics ...string) kadm.Metadata {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(ta.addr)}
	if clientID != "" {
		opts = append(opts, kgo.ClientID(clientID))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).Metadata(context.Background(), topics...)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// brokerIDs returns the node ids ta lists, sorted.
func brokerIDs(t *testing.T, ta *testAgent) []int32 {
	t.Helper()
	md := metadata(t, ta, "")
	var ids []int32
	for _, b := range md.Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	return ids
}

// TestClusterMembershipAndLeadership: agents see each other; leaders are
// spread over them and stable; a client naming its zone is sent to agents
// in that zone; an agent that leaves is no longer listed, its partitions
// move, and leader epochs move forward.
func TestClusterMembershipAndLeadership(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, "z1", "z2", "z2")
	a, b := agents[0], agents[1]
	cl := a.client(t)
	for _, ag := range agents { // views converge within a heartbeat
		poll.Until(t, "three brokers in every agent's metadata", func() bool { return len(brokerIDs(t, ag)) == 3 })
	}
	createTopic(t, cl, "spread", 24, nil)

	leaders := func(ta *testAgent, clientID string) (map[int32]int32, int32) {
		t.Helper()
		td := metadata(t, ta, clientID, "spread").Topics
		if td["spread"].Err != nil {
			t.Fatalf("metadata: %v", td["spread"].Err)
		}
		out := make(map[int32]int32)
		var epoch int32
		for p, pd := range td["spread"].Partitions {
			out[p] = pd.Leader
			epoch = pd.LeaderEpoch
		}
		return out, epoch
	}
	// On a loaded machine an agent's heartbeat can be late enough for the
	// others to drop it for a moment; leadership then spreads over the
	// agents that are live, and over all 3 again once it is back.
	var before map[int32]int32
	var epoch1 int32
	perLeader := make(map[int32]int)
	poll.Until(t, "24 partitions led by all 3 agents", func() bool {
		before, epoch1 = leaders(a, "")
		clear(perLeader)
		for _, l := range before {
			perLeader[l]++
		}
		return len(perLeader) == 3
	})
	// Another agent computes the same leaders.
	if other, _ := leaders(b, ""); !mapsEqual(other, before) {
		t.Fatalf("agents disagree on leaders:\n%v\n%v", before, other)
	}
	// A client in zone z1 is sent to the z1 agent only.
	z1, _ := leaders(b, "app,silt_az=z1")
	for p, l := range z1 {
		if l != nodeOf(t, a) {
			t.Fatalf("partition %d led by %d for a z1 client, want the z1 agent %d", p, l, nodeOf(t, a))
		}
	}

	// c leaves: it is no longer listed, only its partitions move, and the
	// leader epoch moves forward.
	c := agents[2]
	cNode := nodeOf(t, c)
	c.stop(t)
	poll.Until(t, "two brokers in metadata", func() bool { return len(brokerIDs(t, a)) == 2 && len(brokerIDs(t, b)) == 2 })
	after, epoch2 := leaders(a, "")
	if epoch2 <= epoch1 {
		t.Fatalf("leader epoch %d after a leave, want > %d", epoch2, epoch1)
	}
	for p, l := range before {
		if l != cNode && after[p] != l {
			t.Fatalf("partition %d moved from %d to %d although its leader stayed", p, l, after[p])
		}
		if after[p] == cNode {
			t.Fatalf("partition %d still led by the departed agent", p)
		}
	}

	// OffsetForLeaderEpoch says nothing was truncated.
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "spread"
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.CurrentLeaderEpoch, rp.LeaderEpoch = epoch2, epoch1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.EndOffset != 0 || p.LeaderEpoch != epoch1 {
		t.Fatalf("OffsetForLeaderEpoch = %+v", p)
	}
	rp.CurrentLeaderEpoch = epoch2 + 100
	req.Topics[0].Partitions[0] = rp
	resp, err = req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("a future epoch: error %v, want UNKNOWN_LEADER_EPOCH", kerr.ErrorForCode(code))
	}
}

func nodeOf(t *testing.T, ta *testAgent) int32 {
	t.Helper()
	for _, b := range metadata(t, ta, "").Brokers {
		if b.Host+":"+itoa(b.Port) == ta.addr {
			return b.NodeID
		}
	}
	t.Fatalf("agent %s not in its own metadata", ta.addr)
	return -1
}

func itoa(i int32) string { return fmtInt(int64(i)) }

func mapsEqual(a, b map[int32]int32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestConsumerOnAnotherAgentWakes: a long poll on agent B wakes when agent
// A commits to that partition, without B polling the store per fetch.
func TestConsumerOnAnotherAgentWakes(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, "", "")
	a, b := agents[0], agents[1]
	clA, clB := a.client(t), b.client(t)
	createTopic(t, clA, "cross", 1, nil)
	// Warm B: it has read the partition once.
	if p := rawFetch(t, clB, "cross", 0, 0, 1, 1<<20); p.ErrorCode != 0 {
		t.Fatalf("fetch on B: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	got := make(chan *kmsg.FetchResponseTopicPartition, 1)
	// Answered with records only if A's commit wakes it; otherwise empty
	// after MaxWait (a minute).
	go func() { got <- rawFetch(t, clB, "cross", 0, 60_000, 1, 1<<20) }()
	poll.Until(t, "B's long poll to wait", func() bool { return b.Stats().FetchesWaiting.Load() == 1 })
	queriesBefore := b.Stats().IndexQueries.Load()
	start := time.Now()
	if code := rawProduce(t, clA, "cross", 0, batch("from", "a")); code != 0 {
		t.Fatalf("produce on A: %v", kerr.ErrorForCode(code))
	}
	p := <-got
	if len(p.RecordBatches) == 0 || p.HighWatermark != 2 {
		t.Fatalf("B's long poll returned %d bytes, hw %d", len(p.RecordBatches), p.HighWatermark)
	}
	t.Logf("B's long poll answered %v after A's produce was acknowledged", time.Since(start))
	if q := b.Stats().IndexQueries.Load() - queriesBefore; q != 0 {
		t.Fatalf("B made %d index queries to serve the tail; want 0 (the notification carries the rows)", q)
	}
}

// TestCatchUpReadUsesIndexWindow: a consumer catching up on an agent that
// did not write the data reads many fetches' worth with one index query
// per window, not one per fetch.
func TestCatchUpReadUsesIndexWindow(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, "", "")
	a, b := agents[0], agents[1]
	clA, clB := a.client(t), b.client(t)
	createTopic(t, clA, "catchup", 1, nil)
	const batches = 30
	for i := 0; i < batches; i++ { // one flush, so one index row, each
		if code := rawProduce(t, clA, "catchup", 0, batch("r")); code != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(code))
		}
	}
	before := b.Stats().IndexQueries.Load()
	for off := int64(0); off < batches; off++ {
		p := rawFetch(t, clB, "catchup", off, 0, 1, 1) // one batch per fetch
		if offs := batchBaseOffsets(t, p.RecordBatches); len(offs) != 1 || offs[0] != off {
			t.Fatalf("fetch at %d returned batches at %v", off, offs)
		}
	}
	if q := b.Stats().IndexQueries.Load() - before; q > 2 {
		t.Fatalf("%d index queries for %d fetches while catching up; want at most 2", q, batches)
	}
}
