package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/internal/testenv"
)

// siltCluster is several agent processes on one Postgres and one MinIO
// bucket.
type siltCluster struct {
	procs []*agentProc
	addrs []string
}

// startSiltCluster starts n agents; agent i is in zone "z<i>".
func startSiltCluster(t *testing.T, n int) *siltCluster {
	t.Helper()
	mio := testenv.MinIO(t)
	_, bucketURL := mio.NewBucket(t)
	dbURL := testenv.Postgres(t).NewDatabase(t)
	env := append(mio.Env(), "SILT_BUCKET_URL="+bucketURL, "SILT_METASTORE_URL="+dbURL)
	c := &siltCluster{}
	for i := 0; i < n; i++ {
		addr := freeAddr(t)
		c.procs = append(c.procs, startSilt(t, addr, env, "agent",
			"--agent-id", fmt.Sprintf("agent-%d", i), "--zone", fmt.Sprintf("z%d", i),
			"--membership-heartbeat", "250ms", "--membership-ttl", "2s", "--shutdown-grace", "20s"))
		c.addrs = append(c.addrs, addr)
	}
	return c
}

// textValue is a record value kcat can print on one line: producer and
// sequence, padded to 1 KiB.
func textValue(producer int, seq int) string {
	v := fmt.Sprintf("p%d-%08d-", producer, seq)
	return v + strings.Repeat(".", valueSize-len(v))
}

// ackSet is the set of values acknowledged or consumed.
type ackSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (s *ackSet) add(v string) {
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[string]bool)
	}
	s.m[v[:min(len(v), 20)]] = true
	s.mu.Unlock()
}

func (s *ackSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// missing returns how many of s are not in other, with an example.
func (s *ackSet) missing(other *ackSet) (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	other.mu.Lock()
	defer other.mu.Unlock()
	n, example := 0, ""
	for k := range s.m {
		if !other.m[k] {
			n++
			example = k
		}
	}
	return n, example
}

// produceText writes n text records through addr (the client is seeded
// with that agent only and learns the rest from metadata), recording acks.
func produceText(ctx context.Context, addr string, producer, n int, topic string, rate time.Duration, acked *ackSet) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(),
		kgo.RecordDeliveryTimeout(60*time.Second), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return
	}
	defer cl.Close()
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil; i++ {
		v := textValue(producer, i)
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Key: []byte(v[:12]), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err == nil {
				acked.add(v)
			}
		})
		if rate > 0 {
			time.Sleep(rate)
		}
	}
	wg.Wait()
}

// TestCrossAgentEndToEndLatency: a consumer attached to agent B (its zone)
// reads what a producer writes through agent A (its zone) at 5 MB/s; the
// end-to-end p50/p99 are reported (the target is flush.interval + 200 ms;
// tests report timings, they never assert on them).
func TestCrossAgentEndToEndLatency(t *testing.T) {
	c := startSiltCluster(t, 2)
	createTopic(t, c.addrs[0], "latency", 4)
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.addrs[0]), kgo.ClientID("bench,silt_az=z0"), kgo.DefaultProduceTopic("latency"),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.addrs[1]), kgo.ClientID("bench,silt_az=z1"), kgo.ConsumeTopics("latency"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Let the consumer find the partitions' ends before producing.
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	cons.PollFetches(wctx)
	wcancel()

	const rate = 5 << 20 // bytes per second
	const seconds = 8
	n := rate / valueSize * seconds
	interval := time.Second / time.Duration(rate/valueSize)
	var lats []time.Duration
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for got := 0; got < n && ctx.Err() == nil; {
			cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				mu.Lock()
				lats = append(lats, time.Since(r.Timestamp))
				mu.Unlock()
				got++
			})
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		prod.Produce(ctx, &kgo.Record{Value: []byte(textValue(0, i)), Timestamp: time.Now()}, nil)
		if d := time.Until(start.Add(time.Duration(i+1) * interval)); d > 0 {
			time.Sleep(d)
		}
	}
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(lats) < n {
		t.Fatalf("consumer on agent B read %d of %d records", len(lats), n)
	}
	slices.Sort(lats)
	t.Logf("produce via agent A, consume via agent B at 5 MiB/s: %d records, end-to-end p50 %v, p99 %v (flush.interval 100ms)",
		len(lats), lats[len(lats)/2], lats[len(lats)*99/100])
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
