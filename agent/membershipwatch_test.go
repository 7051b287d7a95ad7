package agent_test

import (
	"testing"

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
	a := startAgentOn(t, s.openStore(t), s.bucket, withoutHeartbeats("agent-a"))
	if n := len(brokerIDs(t, a)); n != 1 {
		t.Fatalf("a alone lists %d agents", n)
	}
	b := startAgentOn(t, s.openStore(t), s.bucket, withoutHeartbeats("agent-b"))
	poll.Until(t, "a listing b, which joined after it", func() bool { return len(brokerIDs(t, a)) == 2 })
	stopNow(b, a)
}
