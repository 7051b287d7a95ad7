package metastoretest

import (
	"errors"
	"testing"
	"time"

	"github.com/siltstream/silt/metastore"
)

// testAgentNodeIDs: an agent's node id is recorded and read back; one a
// live agent holds is refused to another with the holder named, and
// nothing of the refused agent is registered; a lapsed or departed
// holder's id can be taken.
func testAgentNodeIDs(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	id := func(n int32) *int32 { return &n }
	register := func(a metastore.Agent, ttl time.Duration) error {
		t.Helper()
		return s.RegisterAgent(ctx, a, ttl)
	}
	nodes := func() map[string]*int32 {
		t.Helper()
		as, err := s.Agents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.Membership(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := make(map[string]*int32)
		for i, a := range as {
			out[a.ID] = a.NodeID
			if mn := m.Agents[i].NodeID; (mn == nil) != (a.NodeID == nil) || mn != nil && *mn != *a.NodeID {
				t.Fatalf("Membership and Agents disagree on %s's node id", a.ID)
			}
		}
		return out
	}
	if err := register(metastore.Agent{ID: "a", Addr: "a:1", NodeID: id(1)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := register(metastore.Agent{ID: "plain", Addr: "p:1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	err := register(metastore.Agent{ID: "b", Addr: "b:1", NodeID: id(1)}, time.Minute)
	var taken *metastore.NodeIDTakenError
	if !errors.As(err, &taken) || taken.NodeID != 1 || taken.Holder.ID != "a" || taken.Holder.Addr != "a:1" {
		t.Fatalf("registering b with a's node id: %v, want a NodeIDTakenError naming a", err)
	}
	got := nodes()
	if _, ok := got["b"]; ok || got["a"] == nil || *got["a"] != 1 || got["plain"] != nil || len(got) != 2 {
		t.Fatalf("agents after the refusal: %v", got)
	}
	// a heartbeats with its id; node id 0 is an id like any other.
	if err := register(metastore.Agent{ID: "a", Addr: "a:1", NodeID: id(1)}, time.Minute); err != nil {
		t.Fatalf("a's heartbeat: %v", err)
	}
	if err := register(metastore.Agent{ID: "b", Addr: "b:1", NodeID: id(0)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := nodes(); got["b"] == nil || *got["b"] != 0 {
		t.Fatalf("b's node id: %v", got["b"])
	}
	// A departed holder frees its id.
	if err := s.DeregisterAgent(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := register(metastore.Agent{ID: "c", Addr: "c:1", NodeID: id(1)}, 2*time.Second); err != nil {
		t.Fatalf("taking a departed agent's node id: %v", err)
	}
	// So does a lapsed one.
	waitFor(t, "c's lease to lapse and free node id 1", 30*time.Second, func() bool {
		return register(metastore.Agent{ID: "d", Addr: "d:1", NodeID: id(1)}, time.Minute) == nil
	})
	if got := nodes(); got["d"] == nil || *got["d"] != 1 {
		t.Fatalf("d's node id: %v", got["d"])
	}
}
