package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/internal/testenv"
)

// siltCluster is several agent processes on one Postgres and one MinIO
// bucket.
type siltCluster struct {
	procs []*agentProc
	addrs []string
	// Where its state is: the bucket (in mio) and the database.
	mio    *testenv.MinIOServer
	bucket string
	dbURL  string
}

// startSiltCluster starts n agents; agent i is in zone "z<i>".
func startSiltCluster(t *testing.T, n int) *siltCluster {
	t.Helper()
	mio := testenv.MinIO(t)
	bucket, bucketURL := mio.NewBucket(t)
	dbURL := testenv.Postgres(t).NewDatabase(t)
	env := append(mio.Env(), "SILT_BUCKET_URL="+bucketURL, "SILT_METASTORE_URL="+dbURL)
	c := &siltCluster{mio: mio, bucket: bucket, dbURL: dbURL}
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

// TestTailOnAnotherAgentReadsEverything: a consumer attached to agent B
// (its zone) tails a topic that a producer writes through agent A (its
// zone), and receives every acknowledged record: B learns of A's commits
// across processes. The end-to-end latency of this path is a figure, not a
// test: `make bench` (cmd/silt-bench, "other agent" tail consumer) reports
// it.
func TestTailOnAnotherAgentReadsEverything(t *testing.T) {
	c := startSiltCluster(t, 2)
	const topic = "tail"
	createTopic(t, c.addrs[0], topic, 4)
	for zone, want := range []int{0, 1} {
		clientID := fmt.Sprintf("tail,silt_az=z%d", zone)
		poll.Within(t, fmt.Sprintf("every partition led by agent-%d for %s", want, clientID), 30*time.Second, func() bool {
			return slices.Equal(slices.Compact(leaderIndexes(t, c.addrs, clientID, topic)), []int{want})
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The topic is new, so consuming from the start is tailing: the consumer
	// long-polls at offset 0 on B before anything is produced.
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.addrs[1]), kgo.ClientID("tail,silt_az=z1"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var received ackSet
	consumed := make(chan struct{})
	const n = 2000
	go func() {
		defer close(consumed)
		for received.len() < n && ctx.Err() == nil {
			cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { received.add(string(r.Value)) })
		}
	}()

	prod, err := kgo.NewClient(kgo.SeedBrokers(c.addrs[0]), kgo.ClientID("tail,silt_az=z0"), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var acked ackSet
	for i := 0; i < n; i++ {
		v := textValue(0, i)
		prod.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce through agent A: %v", err)
				return
			}
			acked.add(v)
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatalf("flush producer: %v", err)
	}
	<-consumed
	if acked.len() != n {
		t.Fatalf("%d of %d records acknowledged", acked.len(), n)
	}
	if k, example := acked.missing(&received); k > 0 {
		t.Fatalf("consumer on agent B missed %d of %d acknowledged records (e.g. %s)", k, n, example)
	}
}

// leaderIndexes returns, per partition of topic in order, the index in addrs
// of its leader as seen by a client with clientID (-1 if not in addrs).
func leaderIndexes(t *testing.T, addrs []string, clientID, topic string) []int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ClientID(clientID))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		return nil
	}
	var out []int
	for _, p := range md.Topics[topic].Partitions.Sorted() {
		i := slices.IndexFunc(md.Brokers, func(b kadm.BrokerDetail) bool { return b.NodeID == p.Leader })
		if i < 0 {
			out = append(out, -1)
			continue
		}
		out = append(out, agentIndex(addrs, md.Brokers[i].Host, md.Brokers[i].Port))
	}
	return out
}
