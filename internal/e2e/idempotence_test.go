package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/internal/testenv"
)

// TestIdempotentProducerExactlyOnce: franz-go's idempotent producer writes
// 100,000 records through two agents on MinIO + Postgres while a proxy cuts
// connections at random and one agent is SIGKILLed and restarted. Every
// acknowledged record is then present exactly once, and each partition holds
// the producer's records in the order it sent them.
func TestIdempotentProducerExactlyOnce(t *testing.T) {
	mio := testenv.MinIO(t)
	_, bucketURL := mio.NewBucket(t)
	dbURL := testenv.Postgres(t).NewDatabase(t)
	env := append(mio.Env(), "SILT_BUCKET_URL="+bucketURL, "SILT_METASTORE_URL="+dbURL)

	var procs []*agentProc
	var proxies []*chaosProxy
	for i := 0; i < 2; i++ {
		listen := freeAddr(t)
		px := startChaosProxy(t, listen)
		proxies = append(proxies, px)
		procs = append(procs, startSilt(t, listen, env, "agent", "--agent-id", fmt.Sprintf("idem-%d", i),
			"--advertise", px.addr(), "--membership-heartbeat", "250ms", "--membership-ttl", "2s"))
	}
	const partitions, total = 8, 100000
	createTopic(t, procs[0].addr, "once", partitions)

	cl, err := kgo.NewClient(kgo.SeedBrokers(proxies[0].addr(), proxies[1].addr()), kgo.DefaultProduceTopic("once"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(2*time.Millisecond),
		kgo.RecordDeliveryTimeout(3*time.Minute), kgo.RequestTimeoutOverhead(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	var mu sync.Mutex
	acked := make(map[int32]map[int]bool)
	failed := 0
	var wg sync.WaitGroup
	for _, px := range proxies {
		px.chaos.Store(true)
	}
	ctx := context.Background()
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, m := range acked {
			n += len(m)
		}
		return n
	}
	killed := make(chan struct{})
	go func() { // SIGKILL an agent a third of the way in, restart it a second later
		defer close(killed)
		for ackedCount() < total/3 {
			time.Sleep(10 * time.Millisecond)
		}
		procs[1].kill()
		t.Logf("SIGKILLed agent idem-1 with %d records acknowledged", ackedCount())
		time.Sleep(time.Second)
		procs[1].start()
	}()
	for i := 0; i < total; i++ {
		p := int32(i % partitions)
		seq := i / partitions
		if i%20 == 0 {
			time.Sleep(time.Millisecond) // spread the load over seconds, so the chaos has time to bite
		}
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("p%d-%d", p, seq))}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			if acked[p] == nil {
				acked[p] = make(map[int]bool)
			}
			acked[p][seq] = true
		})
	}
	wg.Wait()
	<-killed
	for _, px := range proxies {
		px.chaos.Store(false)
	}
	cuts := proxies[0].cuts.Load() + proxies[1].cuts.Load()
	t.Logf("%d records acknowledged, %d failed, %d connections cut", total-failed, failed, cuts)
	if cuts == 0 {
		t.Fatal("the proxies cut no connection: the test proved nothing")
	}

	// Read everything back, straight from the agents.
	read := make(map[int32][]int)
	cons, err := kgo.NewClient(kgo.SeedBrokers(proxies[0].addr()), kgo.ConsumeTopics("once"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	ends := endOffsets(t, procs[0].addr, "once")
	got := int64(0)
	var want int64
	for _, e := range ends {
		want += e
	}
	for got < want && rctx.Err() == nil {
		cons.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			seq, err := strconv.Atoi(v[strings.IndexByte(v, '-')+1:])
			if err != nil {
				t.Fatalf("bad value %q", v)
			}
			read[r.Partition] = append(read[r.Partition], seq)
			got++
		})
	}
	for p := int32(0); p < partitions; p++ {
		seqs := read[p]
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Fatalf("partition %d: seq %d after %d at offset %d: a duplicate or a reordering", p, seqs[i], seqs[i-1], i)
			}
		}
		present := make(map[int]bool, len(seqs))
		for _, s := range seqs {
			present[s] = true
		}
		for s := range acked[p] {
			if !present[s] {
				t.Fatalf("partition %d: acknowledged seq %d is missing", p, s)
			}
		}
	}
	t.Logf("read %d records: every acknowledged record once, in order", got)
}

// endOffsets lists a topic's partition end offsets through addr.
func endOffsets(t *testing.T, addr, topic string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int32]int64)
	offs.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}
