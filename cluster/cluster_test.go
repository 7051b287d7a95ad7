package cluster_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/siltstream/silt/cluster"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/sqlite"
)

func brokers(ids ...string) []cluster.Broker {
	var out []cluster.Broker
	for _, id := range ids {
		out = append(out, cluster.Broker{ID: id, NodeID: cluster.NodeID(id)})
	}
	return out
}

// Placement is stable under churn: when an agent joins, only keys it wins
// move, and every key it wins comes to it; when it leaves, only its keys move.
func TestPlacementMovesOnlyWhatItMust(t *testing.T) {
	before := &cluster.View{Brokers: brokers("a", "b", "c")}
	after := &cluster.View{Brokers: brokers("a", "b", "c", "d")}
	moved, toD := 0, 0
	const n = 3000
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("group-%d", i)
		x, y := before.CoordinatorFor(key), after.CoordinatorFor(key)
		if x.ID != y.ID {
			moved++
			if y.ID != "d" {
				t.Fatalf("%s moved from %s to %s, not to the new agent", key, x.ID, y.ID)
			}
		}
		if y.ID == "d" {
			toD++
		}
	}
	if moved != toD {
		t.Fatalf("moved %d keys, the new agent won %d", moved, toD)
	}
	// About 1/4 of keys move to the fourth agent; a hash that sent almost
	// none or almost all would be broken.
	if moved < n/8 || moved > n/2 {
		t.Fatalf("%d of %d keys moved to the new agent; want about a quarter", moved, n)
	}
}

func TestLeaderForPrefersClientZone(t *testing.T) {
	v := &cluster.View{Brokers: []cluster.Broker{
		{ID: "a", Zone: "z1"}, {ID: "b", Zone: "z2"}, {ID: "c", Zone: "z2"},
	}}
	for p := int32(0); p < 50; p++ {
		tp := metastore.TopicPartition{Topic: metastore.TopicID{1}, Partition: p}
		if got := v.LeaderFor(tp, "z1"); got.ID != "a" {
			t.Fatalf("partition %d: leader for z1 is %s, want a (the only agent in z1)", p, got.ID)
		}
		if got := v.LeaderFor(tp, "z2"); got.Zone != "z2" {
			t.Fatalf("partition %d: leader for z2 is in %s", p, got.Zone)
		}
		if got, all := v.LeaderFor(tp, "nowhere"), v.LeaderFor(tp, ""); got != all {
			t.Fatalf("partition %d: an unknown zone gives %s, no zone gives %s", p, got.ID, all.ID)
		}
	}
}

func TestClientZone(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		"consumer-1":                "",
		"silt_az=us-east-1a":        "us-east-1a",
		"app,silt_az=z2":            "z2",
		"app silt_az=z3 other=x":    "z3",
		"app;silt_az=z4;":           "z4",
		"not_silt_az=z5,silt_az=z6": "z6",
	} {
		if got := cluster.ClientZone(in); got != want {
			t.Errorf("ClientZone(%q) = %q, want %q", in, got, want)
		}
	}
}

func openStore(t *testing.T) metastore.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func member(t *testing.T, store metastore.Store, id, addr string) *cluster.Membership {
	t.Helper()
	m, err := cluster.NewMembership(cluster.Config{AgentID: id, Advertise: addr, Heartbeat: time.Second, TTL: time.Minute}, store)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Two agents that joined see each other, agree on every coordinator and
// the epoch; one leaving moves the epoch and its keys to the other.
func TestMembershipJoinAgreeLeave(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	a := member(t, store, "agent-a", "10.0.0.1:9092")
	b := member(t, store, "agent-b", "10.0.0.2:9092")
	if got := a.View().Brokers; len(got) != 1 || got[0].ID != "agent-a" {
		t.Fatalf("before joining, a sees %v; want only itself", got)
	}
	for _, m := range []*cluster.Membership{a, b, a} {
		if err := m.Join(ctx); err != nil {
			t.Fatal(err)
		}
	}
	va, vb := a.View(), b.View()
	if len(va.Brokers) != 2 || va.Epoch != vb.Epoch {
		t.Fatalf("a sees %d agents at epoch %d, b sees epoch %d", len(va.Brokers), va.Epoch, vb.Epoch)
	}
	for i := 0; i < 100; i++ {
		key := fmt.Sprint("txn-", i)
		if a.IsCoordinator(key) == b.IsCoordinator(key) {
			t.Fatalf("%s: a and b both (or neither) coordinate it", key)
		}
	}
	if got := va.Brokers[1]; got.Host != "10.0.0.2" || got.Port != 9092 || got.NodeID != cluster.NodeID("agent-b") {
		t.Fatalf("b is listed as %+v", got)
	}
	b.Leave(ctx)
	if err := a.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if v := a.View(); len(v.Brokers) != 1 || v.Epoch <= va.Epoch {
		t.Fatalf("after b left, a sees %d agents at epoch %d (was %d)", len(v.Brokers), v.Epoch, va.Epoch)
	}
	if !a.IsCoordinator("txn-1") || !a.IsCoordinator("txn-2") {
		t.Fatal("the only agent left does not coordinate everything")
	}
}

func TestNewMembershipRejectsBadAdvertise(t *testing.T) {
	if _, err := cluster.NewMembership(cluster.Config{AgentID: "x", Advertise: "no-port"}, openStore(t)); err == nil {
		t.Fatal("an advertised address without a port was accepted")
	}
}

// A leaving agent waits until its peers have heartbeated (and so re-read
// the membership) before it stops serving: then no peer routes clients to
// it any more.
func TestLeaveWaitsUntilPeersNotice(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := openStore(t)
	mk := func(id string) *cluster.Membership {
		m, err := cluster.NewMembership(cluster.Config{AgentID: id, Advertise: "127.0.0.1:9092", Heartbeat: 20 * time.Millisecond, TTL: time.Minute}, store)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Join(ctx); err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := mk("a"), mk("b")
	if err := a.Join(ctx); err != nil { // a sees b
		t.Fatal(err)
	}
	if len(a.View().Brokers) != 2 {
		t.Fatalf("a sees %d agents", len(a.View().Brokers))
	}
	go a.Run(ctx) // a heartbeats on its own
	b.Leave(ctx)
	// The wait is bounded by a few heartbeats, which a starved machine can
	// outlast: what is promised is that once it reports every peer
	// noticed, they have. Each call waits for two fresh heartbeats.
	for !b.AwaitPeersSeeLeave(context.Background()) {
	}
	for _, br := range a.View().Brokers {
		if br.ID == "b" {
			t.Fatal("b stopped waiting while a still lists it")
		}
	}
}

// A leaving agent lists only the others and coordinates nothing, so the
// clients it still serves are sent away, and coordinator requests get
// NOT_COORDINATOR while it can still answer them.
func TestLeavingAgentSendsClientsAway(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	a := member(t, store, "agent-a", "10.0.0.1:9092")
	b := member(t, store, "agent-b", "10.0.0.2:9092")
	for _, m := range []*cluster.Membership{a, b, a} {
		if err := m.Join(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mine := ""
	for i := 0; mine == ""; i++ {
		if k := fmt.Sprint("g-", i); a.IsCoordinator(k) {
			mine = k
		}
	}
	a.Leave(ctx)
	if a.IsCoordinator(mine) {
		t.Fatal("a leaving agent still coordinates")
	}
	if v := a.View(); len(v.Brokers) != 1 || v.Brokers[0].ID != "agent-b" {
		t.Fatalf("leaving agent's view: %+v, want only agent-b", v.Brokers)
	}
	if got := a.CoordinatorFor(mine); got.ID != "agent-b" {
		t.Fatalf("leaving agent names %s as coordinator, want agent-b", got.ID)
	}
}
