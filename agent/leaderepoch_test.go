package agent_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
)

// withoutHeartbeats names an agent that does not heartbeat within a test:
// its view moves only when it rereads the membership for another reason.
func withoutHeartbeats(id string) func(*agent.Config) {
	return func(c *agent.Config) { c.ID, c.Heartbeat, c.MembershipTTL = id, time.Hour, 2*time.Hour }
}

// stopNow stops agents at once. Agents that never renew their registration
// cannot stop gracefully: leaving, each would wait for peers to notice who
// never look.
func stopNow(tas ...*testAgent) {
	for _, ta := range tas {
		ta.stopOnce.Do(func() { ta.Close() })
	}
}

// leaderEpoch is the leader epoch ta's Metadata gives partition 0 of topic.
func leaderEpoch(t *testing.T, ta *testAgent, topic string) int32 {
	t.Helper()
	md := metadata(t, ta, "", topic)
	return md.Topics[topic].Partitions[0].LeaderEpoch
}

// epochRequests sends ta a Fetch, a ListOffsets and an OffsetForLeaderEpoch
// for partition 0 of topic, each at current leader epoch epoch, and
// returns their partition error codes.
func epochRequests(t *testing.T, ta *testAgent, topic string, id [16]byte, epoch int32) (fetch, list, ofle int16) {
	t.Helper()
	cl := ta.client(t, kgo.MaxVersions(nil)) // the newest versions, which carry epochs
	f := kmsg.NewPtrFetchRequest()
	f.ReplicaID, f.SessionEpoch, f.MaxBytes = -1, -1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, id
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 1<<20, epoch
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	fetch = request(t, cl, f).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode

	l := kmsg.NewPtrListOffsetsRequest()
	l.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp, lp.CurrentLeaderEpoch = -1, epoch
	lt.Partitions = append(lt.Partitions, lp)
	l.Topics = append(l.Topics, lt)
	list = request(t, cl, l).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode

	o := kmsg.NewPtrOffsetForLeaderEpochRequest()
	o.ReplicaID = -1
	ot := kmsg.NewOffsetForLeaderEpochRequestTopic()
	ot.Topic = topic
	op := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	op.CurrentLeaderEpoch, op.LeaderEpoch = epoch, max(epoch, 0)
	ot.Partitions = append(ot.Partitions, op)
	o.Topics = append(o.Topics, ot)
	ofle = request(t, cl, o).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0].ErrorCode
	return fetch, list, ofle
}

// TestStaleLeaderEpochIsFenced: a request carrying the leader epoch of
// metadata from before an agent joined is answered FENCED_LEADER_EPOCH (the
// client refreshes its metadata, and so forgets agents that left), as Kafka
// answers after a leader change; one carrying an epoch newer than the
// agent's view makes the agent reread the membership rather than refuse;
// one newer than any is UNKNOWN_LEADER_EPOCH; -1 is not checked.
func TestStaleLeaderEpochIsFenced(t *testing.T) {
	t.Parallel()
	s := postgresMinIO.newStorage(t)
	a := startAgentOn(t, s.openStore(t), s.bucket, withoutHeartbeats("agent-a"))
	cl := a.client(t)
	createTopic(t, cl, "epochs", 1, nil)
	if code := rawProduce(t, cl, "epochs", 0, batch("x")); code != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(code))
	}
	id := topicID(t, cl, "epochs")
	old := leaderEpoch(t, a, "epochs")
	if f, l, o := epochRequests(t, a, "epochs", id, old); f != 0 || l != 0 || o != 0 {
		t.Fatalf("at the current epoch %d: fetch %v, list offsets %v, offset for leader epoch %v", old,
			kerr.ErrorForCode(f), kerr.ErrorForCode(l), kerr.ErrorForCode(o))
	}

	b := startAgentOn(t, s.openStore(t), s.bucket, withoutHeartbeats("agent-b"))
	t.Cleanup(func() { stopNow(b, a) }) // before the graceful stops: cleanups run last first
	cur := leaderEpoch(t, b, "epochs")
	if cur <= old {
		t.Fatalf("an agent joined and the leader epoch went from %d to %d", old, cur)
	}
	// a may not have reread the membership since b joined (it does on the
	// store's notification); a client that has is served anyway, because a
	// rereads it on demand.
	if f, l, o := epochRequests(t, a, "epochs", id, cur); f != 0 || l != 0 || o != 0 {
		t.Fatalf("newer epoch %d at the agent whose view lagged: fetch %v, list offsets %v, offset for leader epoch %v", cur,
			kerr.ErrorForCode(f), kerr.ErrorForCode(l), kerr.ErrorForCode(o))
	}
	for _, ta := range []*testAgent{a, b} {
		f, l, o := epochRequests(t, ta, "epochs", id, old)
		for what, code := range map[string]int16{"fetch": f, "list offsets": l, "offset for leader epoch": o} {
			wantCode(t, what+" at the epoch from before the join", code, kerr.FencedLeaderEpoch)
		}
		f, l, o = epochRequests(t, ta, "epochs", id, cur+1)
		for what, code := range map[string]int16{"fetch": f, "list offsets": l, "offset for leader epoch": o} {
			wantCode(t, what+" at an epoch no agent has", code, kerr.UnknownLeaderEpoch)
		}
		f, l, o = epochRequests(t, ta, "epochs", id, -1)
		for what, code := range map[string]int16{"fetch": f, "list offsets": l, "offset for leader epoch": o} {
			wantCode(t, what+" without an epoch", code, nil)
		}
	}
}
