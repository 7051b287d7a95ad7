package e2e

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/internal/testenv"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupConsumer is a kgo consumer in a group, recording what it reads. It
// offers the range balancer, which librdkafka (kcat) offers by default too:
// a group needs a protocol every member supports, as with Kafka.
func groupConsumer(ctx context.Context, t *testing.T, addrs []string, group, topic string, seen *ackSet) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AutoCommitInterval(500*time.Millisecond))
	if err != nil {
		t.Errorf("group consumer: %v", err)
		return
	}
	defer cl.Close() // leaves the group and commits
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { seen.add(string(r.Value)) })
	}
}

// kcatGroupConsumer runs `kcat -G` (librdkafka's balanced consumer).
func kcatGroupConsumer(ctx context.Context, t *testing.T, addrs []string, group, topic string, seen *ackSet, count *atomic.Int64) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Errorf("kcat not found (apt-get install kcat): %v", err)
		return
	}
	// -u: unbuffered output, so every record reaches the test as it is read.
	cmd := exec.CommandContext(ctx, kcat, "-b", strings.Join(addrs, ","), "-G", group, "-X", "auto.offset.reset=earliest",
		"-u", "-q", "-f", "%s\n", topic)
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	defer func() {
		if t.Failed() {
			t.Logf("kcat -G stderr:\n%s", stderr.String())
		}
	}()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Error(err)
		return
	}
	if err := cmd.Start(); err != nil {
		t.Errorf("start kcat -G: %v", err)
		return
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		seen.add(sc.Text())
		count.Add(1)
	}
	_ = cmd.Wait()
}

// watchCommitted polls the group's committed offsets and reports any that
// move backwards.
func watchCommitted(ctx context.Context, addrs []string, group string, backwards *atomic.Int64, last map[int32]int64, mu *sync.Mutex) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for ctx.Err() == nil {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		offs, err := adm.FetchOffsets(qctx, group)
		cancel()
		if err == nil {
			mu.Lock()
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Err == nil && o.At < last[o.Partition] {
					backwards.Add(1)
				}
				last[o.Partition] = max(last[o.Partition], o.At)
			})
			mu.Unlock()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestClusterGroupSurvivesSIGKILL: three agents; producers through all
// three to a 12-partition topic; a group of three franz-go consumers and
// one kcat -G consumer reads it. One agent is SIGKILLed mid-run: every
// acknowledged record is consumed at least once, committed offsets never go
// backwards, and a restarted consumer resumes from its committed offsets.
func TestClusterGroupSurvivesSIGKILL(t *testing.T) {
	c := startSiltCluster(t, 3)
	createTopic(t, c.addrs[0], "events", 12)

	var acked, seen ackSet
	var backwards atomic.Int64
	var mu sync.Mutex
	committed := make(map[int32]int64)
	cctx, stopConsumers := context.WithCancel(context.Background())
	var cwg sync.WaitGroup
	for i := 0; i < 3; i++ {
		cwg.Add(1)
		go func() { defer cwg.Done(); groupConsumer(cctx, t, c.addrs, "readers", "events", &seen) }()
	}
	cwg.Add(2)
	var kcatRead atomic.Int64
	go func() { defer cwg.Done(); kcatGroupConsumer(cctx, t, c.addrs, "readers", "events", &seen, &kcatRead) }()
	go func() { defer cwg.Done(); watchCommitted(cctx, c.addrs, "readers", &backwards, committed, &mu) }()

	const perProducer = 8000
	var pwg sync.WaitGroup
	for i := range c.addrs {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			produceText(context.Background(), c.addrs[i], i, perProducer, "events", 100*time.Microsecond, &acked)
		}()
	}
	poll.Within(t, "a third of the records acknowledged", 2*time.Minute, func() bool { return acked.len() > perProducer })
	c.procs[1].kill()
	t.Logf("SIGKILLed agent-1 with %d records acknowledged, %d consumed", acked.len(), seen.len())
	time.Sleep(time.Second)
	c.procs[1].start()
	pwg.Wait()
	t.Logf("producers done: %d acknowledged", acked.len())

	poll.Within(t, "every acknowledged record consumed", 3*time.Minute, func() bool {
		n, _ := acked.missing(&seen)
		return n == 0
	})
	stopConsumers()
	cwg.Wait()
	if kcatRead.Load() == 0 {
		t.Fatal("the kcat -G member of the group read nothing: the group did not balance partitions to it")
	}
	t.Logf("kcat -G read %d records as one of four group members", kcatRead.Load())
	if n := backwards.Load(); n > 0 {
		t.Fatalf("committed offsets moved backwards %d times", n)
	}

	// A restarted consumer resumes from the committed offsets: it reads
	// nothing from before them.
	mu.Lock()
	final := make(map[int32]int64)
	for p, o := range committed {
		final[p] = o
	}
	mu.Unlock()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.ConsumerGroup("readers"), kgo.ConsumeTopics("events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	offs, err := adm.FetchOffsets(context.Background(), "readers")
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) == 0 {
		t.Fatal("no committed offsets for the group")
	}
	first := make(map[int32]int64)
	produceText(context.Background(), c.addrs[0], 9, 50, "events", 0, &acked) // something new to read
	rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for len(first) == 0 && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			if _, ok := first[r.Partition]; !ok {
				first[r.Partition] = r.Offset
			}
		})
	}
	for p, o := range first {
		if c, ok := offs.Lookup("events", p); ok && o < c.At {
			t.Fatalf("restarted consumer read partition %d from %d, before its committed offset %d", p, o, c.At)
		}
		if o < final[p] {
			t.Fatalf("restarted consumer read partition %d from %d, before the last seen commit %d", p, o, final[p])
		}
	}
}

// TestClusterRollingRestart: SIGTERM each agent in turn and start it again
// while producers and a consumer group run: nothing acknowledged is lost,
// every agent exits 0, and the group keeps working.
func TestClusterRollingRestart(t *testing.T) {
	c := startSiltCluster(t, 3)
	createTopic(t, c.addrs[0], "rolling", 12)
	var acked, seen ackSet
	cctx, stopConsumers := context.WithCancel(context.Background())
	var cwg sync.WaitGroup
	for i := 0; i < 2; i++ {
		cwg.Add(1)
		go func() { defer cwg.Done(); groupConsumer(cctx, t, c.addrs, "rollers", "rolling", &seen) }()
	}
	pctx, stopProducers := context.WithCancel(context.Background())
	var pwg sync.WaitGroup
	for i := range c.addrs {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			produceText(pctx, c.addrs[i], i, 1<<30, "rolling", 500*time.Microsecond, &acked)
		}()
	}
	for i, p := range c.procs {
		poll.Within(t, "progress before restarting an agent", time.Minute, func() bool { return acked.len() > (i+1)*2000 })
		p.stop() // fails the test unless it exits 0 within the grace period
		p.start()
		t.Logf("restarted agent-%d: %d acknowledged so far", i, acked.len())
	}
	poll.Within(t, "more progress after the last restart", time.Minute, func() bool { return acked.len() > 8000 })
	stopProducers()
	pwg.Wait()
	poll.Within(t, "every acknowledged record consumed by the group", 3*time.Minute, func() bool {
		n, _ := acked.missing(&seen)
		return n == 0
	})
	stopConsumers()
	cwg.Wait()

	// And every acknowledged record is in the topic, read from the start.
	var all ackSet
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.ConsumeTopics("rolling"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for rctx.Err() == nil {
		if n, _ := acked.missing(&all); n == 0 {
			break
		}
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) { all.add(string(r.Value)) })
	}
	if n, ex := acked.missing(&all); n > 0 {
		t.Fatalf("%d acknowledged records missing from the topic (e.g. %s)", n, ex)
	}
}
