package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/internal/poll"
)

// TestClusterShareGroupSurvivesSIGKILL: three agents with share groups
// on (KIP-932; share.auto.offset.reset earliest, a 5 s acquisition
// lock); three franz-go share consumers (kgo.ShareGroup) read a
// 6-partition topic while producers write through every agent. Each
// consumer releases a record the first time it gets it when its sequence
// ends in 3, rejects it when the sequence is 7 modulo 50, releases it
// every time when the sequence is 11 modulo 50 (so the group archives it
// at the delivery limit), and accepts the rest. The agent coordinating the group is SIGKILLed halfway.
// Then: every acknowledged record that is not to be rejected is accepted
// (at least once: an acknowledgement that died with the agent makes the
// record come back), released records came back at delivery count 2 or
// more, no rejected record is ever accepted, records always released are
// delivered at most group.share.delivery.count.limit times and never
// accepted, the records accepted twice (an acknowledgement lost with the
// agent) are counted and logged, and in the end the group
// has nothing left in flight (DescribeShareGroupOffsets: lag 0 on every
// partition).
func TestClusterShareGroupSurvivesSIGKILL(t *testing.T) {
	t.Setenv("SILT_GROUP_COORDINATOR_REBALANCE_PROTOCOLS", "classic,consumer,share")
	t.Setenv("SILT_SHARE_AUTO_OFFSET_RESET", "earliest")
	t.Setenv("SILT_GROUP_SHARE_RECORD_LOCK_DURATION_MS", "5000")
	t.Setenv("SILT_GROUP_SHARE_HEARTBEAT_INTERVAL_MS", "500")
	c := startSiltCluster(t, 3)
	const topic, group = "shared", "sharers"
	createTopic(t, c.addrs[0], topic, 6)

	seq := func(v string) int {
		// textValue: p<producer>-<8-digit sequence>-...
		for i := 0; i < len(v); i++ {
			if v[i] == '-' && i+9 <= len(v) {
				n, _ := strconv.Atoi(v[i+1 : i+9])
				return n
			}
		}
		return -1
	}
	var acked, accepted, rejected, redelivered ackSet
	// Acceptances and deliveries by partition and offset: a record
	// accepted twice is one whose first acknowledgement was lost.
	type at struct {
		p int32
		o int64
	}
	var countMu sync.Mutex
	accepts := map[at]int{}
	maxDelivery := 0 // of the records always released
	cctx, stopConsumers := context.WithCancel(context.Background())
	var cwg sync.WaitGroup
	for range 3 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.ShareGroup(group), kgo.ConsumeTopics(topic))
			if err != nil {
				t.Errorf("share consumer: %v", err)
				return
			}
			defer cl.Close()
			for cctx.Err() == nil {
				cl.PollFetches(cctx).EachRecord(func(r *kgo.Record) {
					v := string(r.Value)
					n := seq(v)
					if r.DeliveryCount() > 1 {
						redelivered.add(v)
					}
					switch {
					case n%50 == 11:
						countMu.Lock()
						maxDelivery = max(maxDelivery, int(r.DeliveryCount()))
						countMu.Unlock()
						r.Ack(kgo.AckRelease)
					case n%50 == 7:
						r.Ack(kgo.AckReject)
						rejected.add(v)
					case n%10 == 3 && r.DeliveryCount() == 1:
						r.Ack(kgo.AckRelease)
					default:
						r.Ack(kgo.AckAccept)
						accepted.add(v)
						countMu.Lock()
						accepts[at{r.Partition, r.Offset}]++
						countMu.Unlock()
					}
				})
			}
		}()
	}
	defer func() { stopConsumers(); cwg.Wait() }()

	// SILT_E2E_SHARE_RECORDS sets the records per producer for a longer
	// run by hand (the 100,000 records: 33334).
	perProducer := 2000
	if n, err := strconv.Atoi(os.Getenv("SILT_E2E_SHARE_RECORDS")); err == nil && n > 0 {
		perProducer = n
	}
	var pwg sync.WaitGroup
	for i := range c.addrs {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			produceText(context.Background(), c.addrs[i], i, perProducer, topic, 300*time.Microsecond, &acked)
		}()
	}
	poll.Within(t, "records accepted by the share group", 2*time.Minute, func() bool {
		return accepted.len() > perProducer/2
	})

	admCl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	coords := kadm.NewClient(admCl).FindGroupCoordinators(context.Background(), group)
	if err := coords.Error(); err != nil {
		t.Fatalf("find coordinator: %v", err)
	}
	coord := coords[group]
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
	t.Logf("SIGKILLed the coordinator, agent-%d, with %d records acknowledged, %d accepted", victim, acked.len(), accepted.len())

	pwg.Wait()
	var left int
	var example, last string
	defer func() {
		if t.Failed() {
			t.Logf("%d records not accepted, e.g. %s; last DescribeShareGroupOffsets: %s", left, example, last)
		}
	}()
	// toAccept counts the acknowledged records that are not to be
	// rejected and were not accepted yet.
	toAccept := func() {
		acked.mu.Lock()
		defer acked.mu.Unlock()
		accepted.mu.Lock()
		defer accepted.mu.Unlock()
		left = 0
		for k := range acked.m {
			if n := seq(k); n%50 != 7 && n%50 != 11 && !accepted.m[k] {
				left++
				example = k
			}
		}
	}
	poll.Within(t, "every acknowledged record accepted or rejected", 3*time.Minute, func() bool {
		toAccept()
		return left == 0
	})

	acked.mu.Lock()
	accepted.mu.Lock()
	redelivered.mu.Lock()
	for k := range acked.m {
		switch n := seq(k); {
		case n%50 == 7 && accepted.m[k]:
			t.Errorf("record %s was rejected, yet accepted", k)
		case n%50 == 11 && accepted.m[k]:
			t.Errorf("record %s was always released, yet accepted", k)
		case n%10 == 3 && !redelivered.m[k]:
			t.Errorf("record %s was released at its first delivery, yet accepted without coming back", k)
		}
	}
	redelivered.mu.Unlock()
	accepted.mu.Unlock()
	acked.mu.Unlock()
	countMu.Lock()
	twice := 0
	for _, n := range accepts {
		twice += n - 1
	}
	limitSeen := maxDelivery
	countMu.Unlock()
	if limitSeen > 5 {
		t.Errorf("a record always released was delivered %d times, past the delivery limit of 5", limitSeen)
	}
	t.Logf("%d acknowledged, %d accepted (%d offsets accepted more than once), %d rejected, %d redelivered; records always released were delivered up to %d times",
		acked.len(), accepted.len(), twice, rejected.len(), redelivered.len(), limitSeen)

	// Nothing is left in flight: the group's start offset reached the end
	// of every partition.
	lag := func() (int64, string) {
		req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
		rg.GroupID = group
		rt := kmsg.NewDescribeShareGroupOffsetsRequestGroupTopic()
		rt.Topic, rt.Partitions = topic, []int32{0, 1, 2, 3, 4, 5}
		rg.Topics = append(rg.Topics, rt)
		req.Groups = append(req.Groups, rg)
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 || len(resp.Groups[0].Topics) != 1 {
			return -1, fmt.Sprintf("%v %+v", err, resp)
		}
		var sum int64
		for _, p := range resp.Groups[0].Topics[0].Partitions {
			if p.ErrorCode != 0 || p.Lag < 0 {
				return -1, fmt.Sprintf("%+v", p)
			}
			sum += p.Lag
		}
		return sum, fmt.Sprintf("%+v", resp.Groups[0].Topics[0].Partitions)
	}
	poll.Within(t, "nothing left in flight", 2*time.Minute, func() bool {
		var n int64
		n, last = lag()
		return n == 0
	})
}
