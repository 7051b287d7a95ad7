package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/internal/poll"
)

// TestLeavingAgentAnswersUntilClientsMoveOn: an agent stopping gracefully
// leaves the cluster and then keeps answering a client that still knows
// it — Metadata without itself, NOT_LEADER_OR_FOLLOWER for produce, so the
// client refreshes and moves on — and closes its listener only once no
// client is connected (here long before shutdown.drain). Clients of a
// stopped agent otherwise dial a closed port, which franz-go's group
// sessions do not survive twice in a row.
func TestLeavingAgentAnswersUntilClientsMoveOn(t *testing.T) {
	t.Parallel()
	s := postgresMinIO.newStorage(t)
	fast := func(id string, drain time.Duration) func(*agent.Config) {
		return func(c *agent.Config) {
			c.ID, c.Heartbeat, c.MembershipTTL, c.ShutdownDrain, c.ShutdownGrace = id, 50*time.Millisecond, 500*time.Millisecond, drain, 2*time.Hour
		}
	}
	a := startAgentOn(t, s.openStore(t), s.bucket, fast("agent-a", 0))
	b := startAgentOn(t, s.openStore(t), s.bucket, fast("agent-b", time.Hour))
	poll.Until(t, "both agents listed", func() bool { return len(brokerIDs(t, a)) == 2 && len(brokerIDs(t, b)) == 2 })
	createTopic(t, a.client(t), "drain", 1, nil)

	cl := pinnedClient(t, b.addr)
	atB := cl.SeedBrokers()[0] // requests straight to b
	produce := func() int16 {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "drain"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch("x")
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return request(t, atB, req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	if code := produce(); code != 0 {
		t.Fatalf("produce before the stop: %v", kerr.ErrorForCode(code))
	}

	shut := make(chan error, 1)
	b.stopOnce.Do(func() {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			shut <- b.Shutdown(ctx)
		}()
	})
	// The write pipeline closes once the peers have seen b leave.
	poll.Until(t, "b refusing produce as a non-leader", func() bool { return produce() == kerr.NotLeaderForPartition.Code })
	md := request(t, atB, kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
	if len(md.Brokers) != 1 || md.Brokers[0].Port == 0 || brokerIDs(t, a)[0] != md.Brokers[0].NodeID {
		t.Fatalf("metadata from the leaving agent lists %+v; want only the other agent", md.Brokers)
	}
	select {
	case err := <-shut:
		t.Fatalf("shutdown finished (%v) while a client was still connected, an hour before shutdown.drain", err)
	default:
	}
	cl.Close() // the client moves on
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
