package metastoretest

import (
	"slices"
	"testing"
	"time"

	"github.com/siltstream/silt/metastore"
)

// testAgentListeners: an agent's advertised listeners are kept in order,
// replaced by a heartbeat, and read back by Agents and Membership; an
// agent without any reads back none.
func testAgentListeners(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	two := []metastore.AgentListener{{Name: "SSL", Addr: "a.example:9093"}, {Name: "PLAINTEXT", Addr: "127.0.0.1:9092"}}
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "a", Addr: "a.example:9093", Listeners: two}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "b", Addr: "b:9092"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	check := func(want []metastore.AgentListener) {
		t.Helper()
		as, err := s.Agents(ctx)
		if err != nil || len(as) != 2 {
			t.Fatalf("Agents = %+v, %v", as, err)
		}
		if !slices.Equal(as[0].Listeners, want) || len(as[1].Listeners) != 0 {
			t.Fatalf("Agents listeners = %+v and %+v, want %+v and none", as[0].Listeners, as[1].Listeners, want)
		}
		m, err := s.Membership(ctx)
		if err != nil || len(m.Agents) != 2 {
			t.Fatalf("Membership = %+v, %v", m, err)
		}
		if !slices.Equal(m.Agents[0].Listeners, want) || len(m.Agents[1].Listeners) != 0 {
			t.Fatalf("Membership listeners = %+v and %+v, want %+v and none", m.Agents[0].Listeners, m.Agents[1].Listeners, want)
		}
	}
	check(two)
	one := []metastore.AgentListener{{Name: "SASL_SSL", Addr: "a.example:9094"}}
	if err := s.RegisterAgent(ctx, metastore.Agent{ID: "a", Addr: "a.example:9094", Listeners: one}, time.Minute); err != nil {
		t.Fatal(err)
	}
	check(one)
}
