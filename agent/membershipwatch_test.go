package agent_test

import (
	"testing"
	"time"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/internal/poll"
)

// TestViewsFollowJoinsWithoutHeartbeats: an agent that never heartbeats
// within the test still sees another join, from the store's notification:
// views agree within a notification's delay, so a client told by one
// agent that a new agent coordinates its group finds that agent's address
// at any other (franz-go gave a group session up after ten seconds of
// "has broker coordinator N, but did not reply with that broker" while an
// agent under load had not heartbeated).
func TestViewsFollowJoinsWithoutHeartbeats(t *testing.T) {
	t.Parallel()
	s := postgresMinIO.newStorage(t)
	slow := func(id string) func(*agent.Config) {
		return func(c *agent.Config) { c.ID, c.Heartbeat, c.MembershipTTL = id, time.Hour, 2*time.Hour }
	}
	a := startAgentOn(t, s.openStore(t), s.bucket, slow("agent-a"))
	if n := len(brokerIDs(t, a)); n != 1 {
		t.Fatalf("a alone lists %d agents", n)
	}
	b := startAgentOn(t, s.openStore(t), s.bucket, slow("agent-b"))
	poll.Until(t, "a listing b, which joined after it", func() bool { return len(brokerIDs(t, a)) == 2 })
	// Neither renews its registration, so a graceful stop would wait for
	// peers to notice that never look: stop both at once.
	for _, ta := range []*testAgent{b, a} {
		ta.stopOnce.Do(func() { ta.Close() })
	}
}
