package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/internal/poll"
)

// TestClusterConsumerGroup848SurvivesSIGKILL: three agents with KIP-848
// consumer groups on; three franz-go members of a consumer group
// (kgo.ServerSideBalancer) read a 6-partition topic while producers
// write. The agent coordinating the group is SIGKILLed: the members carry
// on from the group as the metastore holds it, all three are members at
// the new coordinator, and every acknowledged record is consumed.
//
// The members refresh metadata every 5 s (kgo.MetadataMaxAge) because of
// a franz-go defect (v1.22.2 and v1.22.3): a dial error on a KIP-848
// heartbeat does not drop the cached coordinator (ConsumerGroupHeartbeat
// bypasses the retry wrapper that does), so the member heartbeats the
// dead address until a metadata refresh drops that broker. A member that
// fetches learns of the change at once (its fetches get
// FENCED_LEADER_EPOCH: the membership epoch moved); one that owns no
// partitions yet fetches nothing and, at the default 5-minute age, stays
// away for minutes. Seen in 2 of 5 runs before this setting.
func TestClusterConsumerGroup848SurvivesSIGKILL(t *testing.T) {
	t.Setenv("SILT_GROUP_COORDINATOR_REBALANCE_PROTOCOLS", "classic,consumer")
	t.Setenv("SILT_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS", "500")
	c := startSiltCluster(t, 3)
	createTopic(t, c.addrs[0], "events848", 6)

	var acked, seen ackSet
	cctx, stopConsumers := context.WithCancel(context.Background())
	var cwg sync.WaitGroup
	for range 3 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.ConsumerGroup("readers848"), kgo.ConsumeTopics("events848"),
				kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AutoCommitInterval(500*time.Millisecond), kgo.MetadataMaxAge(5*time.Second))
			if err != nil {
				t.Errorf("group consumer: %v", err)
				return
			}
			defer cl.Close()
			for cctx.Err() == nil {
				cl.PollFetches(cctx).EachRecord(func(r *kgo.Record) { seen.add(string(r.Value)) })
			}
		}()
	}
	defer func() { stopConsumers(); cwg.Wait() }()

	const perProducer = 3000
	var pwg sync.WaitGroup
	for i := range c.addrs {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			produceText(context.Background(), c.addrs[i], i, perProducer, "events848", 200*time.Microsecond, &acked)
		}()
	}

	admCl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	var last string // the last answer, for a failure message
	members := func() int {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Groups = []string{"readers848"}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// A new client each time: a client keeps dialing a coordinator it
		// cached, even a killed one.
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
			last = fmt.Sprintf("%v %+v", err, resp)
			return -1
		}
		last = fmt.Sprintf("%+v", resp.Groups[0])
		return len(resp.Groups[0].Members)
	}
	defer func() {
		if t.Failed() {
			t.Logf("last ConsumerGroupDescribe: %s", last)
		}
	}()
	poll.Within(t, "three members in the consumer group and records consumed", 2*time.Minute, func() bool {
		return members() == 3 && seen.len() > perProducer/2
	})

	// Which agent coordinates the group: kill that one.
	coords := adm.FindGroupCoordinators(context.Background(), "readers848")
	if err := coords.Error(); err != nil {
		t.Fatalf("find coordinator: %v", err)
	}
	coord := coords["readers848"]
	victim := -1
	for i, a := range c.addrs {
		if a == fmt.Sprintf("%s:%d", coord.Host, coord.Port) {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("coordinator %s:%d is none of %v", coord.Host, coord.Port, c.addrs)
	}
	c.procs[victim].kill()
	t.Logf("SIGKILLed the coordinator, agent-%d, with %d records acknowledged, %d consumed", victim, acked.len(), seen.len())

	pwg.Wait()
	poll.Within(t, "every acknowledged record consumed", 3*time.Minute, func() bool {
		n, _ := acked.missing(&seen)
		return n == 0
	})
	// Members cut off from the dead coordinator at most wait out the 45 s
	// session there and rejoin.
	poll.Within(t, "three members at the new coordinator", 3*time.Minute, func() bool { return members() == 3 })
}
