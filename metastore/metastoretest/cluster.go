package metastoretest

import (
	"testing"
	"time"

	"github.com/siltstream/silt/metastore"
)

func testLeases(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	acquire := func(name, holder string, ttl time.Duration) bool {
		t.Helper()
		ok, err := s.AcquireLease(ctx, name, holder, ttl)
		if err != nil {
			t.Fatalf("AcquireLease(%s, %s): %v", name, holder, err)
		}
		return ok
	}
	if !acquire("gc", "a", time.Minute) {
		t.Fatal("a could not take a free lease")
	}
	if acquire("gc", "b", time.Minute) {
		t.Fatal("b took a lease a holds")
	}
	if !acquire("gc", "a", time.Minute) {
		t.Fatal("a could not renew its lease")
	}
	if !acquire("retention", "b", time.Minute) {
		t.Fatal("b could not take a different free lease")
	}
	// Releasing a lease one does not hold does nothing.
	if err := s.ReleaseLease(ctx, "gc", "b"); err != nil {
		t.Fatal(err)
	}
	if acquire("gc", "b", time.Minute) {
		t.Fatal("b took a's lease after releasing it without holding it")
	}
	if err := s.ReleaseLease(ctx, "gc", "a"); err != nil {
		t.Fatal(err)
	}
	if !acquire("gc", "b", time.Minute) {
		t.Fatal("b could not take a released lease")
	}

	// Expiry: a short lease lapses by the store's clock; a renewal with a
	// long ttl does not. Whether b's attempt came before the lapse is only
	// known by the clock (a busy machine can take longer than the ttl).
	const short = 2 * time.Second
	taken := time.Now()
	if !acquire("short", "a", short) {
		t.Fatal("a could not take a free lease")
	}
	if acquire("short", "b", time.Minute) && time.Since(taken) < short {
		t.Fatal("b took a lease before it expired")
	}
	waitFor(t, "an expired lease to pass to b", 30*time.Second, func() bool { return acquire("short", "b", time.Minute) })
	if acquire("short", "a", time.Minute) {
		t.Fatal("a took b's lease back while b held it with a long ttl")
	}
}

func testAgents(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	got, err := s.Agents(ctx)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Agents of an empty store = %#v, %v; want an empty slice", got, err)
	}
	start := time.Now()
	for _, a := range []metastore.Agent{
		{ID: "b", Addr: "10.0.0.2:9092", Zone: "z2"},
		{ID: "a", Addr: "10.0.0.1:9092", Zone: "z1"},
	} {
		if err := s.RegisterAgent(ctx, a, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// A short lease, listed while it lasts (only the clock says whether the
	// listing below came in time on a busy machine).
	const short = 2 * time.Second
	registered := time.Now()
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "short", Addr: "x:1"}, short); err != nil {
		t.Fatal(err)
	}
	// A heartbeat updates the address.
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "a", Addr: "10.0.0.9:9092", Zone: "z1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err = s.Agents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if inTime := time.Since(registered) < short; len(got) < 2 || got[0].ID != "a" || got[1].ID != "b" ||
		(inTime && (len(got) != 3 || got[2].ID != "short")) {
		t.Fatalf("Agents = %+v, want a, b, short", got)
	}
	if got[0].Addr != "10.0.0.9:9092" || got[0].Zone != "z1" {
		t.Fatalf("agent a after heartbeat = %+v", got[0])
	}
	if exp := got[0].Expires; exp.Before(start.Add(50*time.Second)) || exp.After(time.Now().Add(70*time.Second)) {
		t.Fatalf("agent a expires at %v, want about a minute from %v", exp, start)
	}
	waitFor(t, "agent short to lapse", 30*time.Second, func() bool {
		got, err := s.Agents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(got) == 2
	})
	if err := s.DeregisterAgent(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	got, err = s.Agents(ctx)
	if err != nil || len(got) != 1 || got[0].ID != "a" {
		t.Fatalf("Agents after deregistering b = %+v, %v; want a", got, err)
	}
	// A lapsed agent that heartbeats again is back.
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "short", Addr: "x:1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Agents(ctx); len(got) != 2 {
		t.Fatalf("Agents after re-registering = %+v, want a and short", got)
	}
}

// testMembershipEpoch: the epoch moves forward exactly when the set of live
// agents changes, never on a heartbeat.
func testMembershipEpoch(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	epoch := func() int64 {
		t.Helper()
		m, err := s.Membership(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return m.Epoch
	}
	e0 := epoch()
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "a", Addr: "a:1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	e1 := epoch()
	if e1 <= e0 {
		t.Fatalf("epoch after a join = %d, want > %d", e1, e0)
	}
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "a", Addr: "a:1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if e := epoch(); e != e1 {
		t.Fatalf("epoch moved on a heartbeat: %d -> %d", e1, e)
	}
	const brief = 2 * time.Second
	registered := time.Now()
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "brief", Addr: "b:1"}, brief); err != nil {
		t.Fatal(err)
	}
	e2 := epoch()
	e2InTime := time.Since(registered) < brief // else the lapse may already count in e2
	var m metastore.Membership
	waitFor(t, "agent brief to lapse", 30*time.Second, func() bool {
		var err error
		m, err = s.Membership(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(m.Agents) == 1
	})
	if (e2InTime && m.Epoch <= e2) || m.Agents[0].ID != "a" {
		t.Fatalf("after a lapse: %+v, want only a and epoch > %d", m, e2)
	}
	if err := s.DeregisterAgent(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if e := epoch(); e <= m.Epoch {
		t.Fatalf("epoch after a leave = %d, want > %d", e, m.Epoch)
	}
	e3 := epoch()
	if err := s.DeregisterAgent(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if e := epoch(); e != e3 {
		t.Fatalf("deregistering an absent agent moved the epoch: %d -> %d", e3, e)
	}
}
