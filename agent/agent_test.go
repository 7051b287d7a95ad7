package agent_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/cache"
	"github.com/siltstream/silt/internal/testenv"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/wire"
)

// testAgent is an agent served on a loopback port, over the metadata store
// and bucket of a backend: the real agent code driven by real Kafka clients
// over TCP.
type testAgent struct {
	*agent.Agent
	addr     string
	store    metastore.Store
	bucket   objectstore.Bucket
	stopOnce sync.Once
}

// startAgent starts an agent on fresh storage of backend bk.
func startAgent(t *testing.T, bk backend, mutate func(*agent.Config)) *testAgent {
	t.Helper()
	return startAgentWith(t, bk, mutate, nil)
}

// startAgentWith lets a test wrap the bucket (fault injection, counting).
func startAgentWith(t *testing.T, bk backend, mutate func(*agent.Config), wrap func(objectstore.Bucket) objectstore.Bucket) *testAgent {
	t.Helper()
	s := bk.newStorage(t)
	bucket := s.bucket
	if wrap != nil {
		bucket = wrap(bucket)
	}
	return startAgentOn(t, s.openStore(t), bucket, mutate)
}

// startAgentOn starts an agent on an open store and a bucket, so several
// agents can form one cluster.
func startAgentOn(t *testing.T, store metastore.Store, bucket objectstore.Bucket, mutate func(*agent.Config)) *testAgent {
	t.Helper()
	return startAgentListener(t, store, bucket, mutate, wire.Listener{Name: "PLAINTEXT", Protocol: wire.Plaintext})
}

// startAgentListener starts an agent serving one listener of protocol l,
// its socket wrapped by wrap if given (TLS).
func startAgentListener(t *testing.T, store metastore.Store, bucket objectstore.Bucket, mutate func(*agent.Config), l wire.Listener, wrap ...func(net.Listener) net.Listener) *testAgent {
	t.Helper()
	return startAgentCached(t, store, bucket, mutate, cache.DefaultConfig(), l, wrap...)
}

// startAgentCached is startAgentListener with a block cache configured as
// ccfg (MemoryBytes 0: every read goes to the bucket).
func startAgentCached(t *testing.T, store metastore.Store, bucket objectstore.Bucket, mutate func(*agent.Config), ccfg cache.Config, l wire.Listener, wrap ...func(net.Listener) net.Listener) *testAgent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.DefaultConfig()
	cfg.ID = "test-agent"
	cfg.Listen = ln.Addr().String()
	cfg.FlushInterval = 20 * time.Millisecond
	cfg.AutoCreateTopics = true
	// Tests stop agents with their clients still connected; the drain has
	// its own test (TestLeavingAgentAnswersUntilClientsMoveOn).
	cfg.ShutdownDrain = 0
	if mutate != nil {
		mutate(&cfg)
	}
	lns, addr := bindTestListeners(t, &cfg, ln)
	for _, w := range wrap {
		lns[0] = w(lns[0])
	}
	cb, err := cache.New(bucket, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cb.Stop) // after the agent has stopped (cleanups run last first)
	a, err := agent.New(cfg, cb, store)
	if err != nil {
		t.Fatalf("new agent: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		if len(cfg.Listeners) > 0 {
			done <- a.ServeListeners(lns...)
			return
		}
		done <- a.ServeListener(lns[0], l)
	}()
	ta := &testAgent{Agent: a, addr: addr, store: store, bucket: bucket}
	t.Cleanup(func() { ta.stop(t); <-done })
	return ta
}

// stop shuts the agent down gracefully (once).
func (ta *testAgent) stop(t *testing.T) {
	ta.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ta.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
}

func (ta *testAgent) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(ta.addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t *testing.T, cl *kgo.Client, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

func TestProduceConsumeInOrder(t *testing.T) {
	forEachBackend(t, testProduceConsumeInOrder)
}

func testProduceConsumeInOrder(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t, kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "orders", 4, nil)

	const perPartition = 500
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := 0; i < perPartition; i++ {
		for p := int32(0); p < 4; p++ {
			wg.Add(1)
			r := &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("p%d-%05d", p, i))}
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}

	consumer := ta.client(t, kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	next := make(map[int32]int)
	for total := 0; total < 4*perPartition; {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			want := fmt.Sprintf("p%d-%05d", r.Partition, next[r.Partition])
			if string(r.Value) != want || r.Offset != int64(next[r.Partition]) {
				t.Fatalf("partition %d offset %d: got %q, want %q at offset %d", r.Partition, r.Offset, r.Value, want, next[r.Partition])
			}
			next[r.Partition]++
			total++
		})
	}
}

// rawProduce sends one partition's records bytes and returns the partition's
// error code.
func rawProduce(t *testing.T, cl *kgo.Client, topic string, partition int32, records []byte) int16 {
	t.Helper()
	req := produceRequest(topic, partition, records)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("produce request: %v", err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// produceRequest is an acks=all Produce of records to one partition.
func produceRequest(topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// batch encodes a valid v2 record batch holding values.
func batch(values ...string) []byte {
	rb := kmsg.RecordBatch{
		FirstOffset: 0, PartitionLeaderEpoch: -1, Magic: 2,
		LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp:  time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(values)),
	}
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1) // length varint of 0 encoded as one byte
		recs = r.AppendTo(recs)
	}
	rb.Records = recs
	raw := rb.AppendTo(nil)
	rb.Length = int32(len(raw) - 12)
	raw = rb.AppendTo(nil)
	rb.CRC = int32(crc32c(raw[21:]))
	return rb.AppendTo(nil)
}

func TestProduceRejectsBadInputAndStoresNothing(t *testing.T) {
	forEachBackend(t, testProduceRejectsBadInputAndStoresNothing)
}

func testProduceRejectsBadInputAndStoresNothing(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t)
	createTopic(t, cl, "strict", 1, map[string]*string{"max.message.bytes": ptr("1000")})

	good := batch("hello")
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-1] ^= 0xff
	oldMagic := append([]byte(nil), good...)
	oldMagic[16] = 1
	big := batch(string(make([]byte, 2000)))

	cases := []struct {
		name    string
		topic   string
		part    int32
		records []byte
		want    *kerr.Error
	}{
		{"bad CRC", "strict", 0, corrupt, kerr.CorruptMessage},
		{"truncated", "strict", 0, good[:30], kerr.CorruptMessage},
		{"magic v1", "strict", 0, oldMagic, kerr.UnsupportedForMessageFormat},
		{"over max.message.bytes", "strict", 0, big, kerr.MessageTooLarge},
		{"two batches", "strict", 0, append(append([]byte(nil), good...), good...), kerr.InvalidRecord},
		{"unknown topic", "nope", 0, good, kerr.UnknownTopicOrPartition},
		{"unknown partition", "strict", 7, good, kerr.UnknownTopicOrPartition},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := rawProduce(t, cl, tc.topic, tc.part, tc.records); got != tc.want.Code {
				t.Fatalf("error code %d (%v), want %s", got, kerr.ErrorForCode(got), tc.want.Message)
			}
		})
	}
	ends := listEnds(t, cl, "strict")
	if ends[0] != 0 {
		t.Fatalf("high watermark after rejected batches = %d, want 0", ends[0])
	}
	if got := rawProduce(t, cl, "strict", 0, good); got != 0 {
		t.Fatalf("good batch after bad ones: error %v", kerr.ErrorForCode(got))
	}
	if ends := listEnds(t, cl, "strict"); ends[0] != 1 {
		t.Fatalf("high watermark = %d, want 1", ends[0])
	}
}

func listEnds(t *testing.T, cl *kgo.Client, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int32]int64)
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("list end offsets: %v", o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

func ptr[T any](v T) *T { return &v }

// testParallel is how many tests and subtests run at once unless
// -test.parallel says otherwise. The default, GOMAXPROCS, fits tests that
// compute; these mostly wait on flush timers, heartbeats and the network, so
// a 2-core machine would run them nearly one by one. It is a constant, not a
// multiple of the cores, to bound the Postgres connections of the agents
// running at once on a large machine.
const testParallel = 8

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		if err := flag.Set("test.parallel", strconv.Itoa(testParallel)); err != nil {
			fmt.Fprintln(os.Stderr, "set -test.parallel:", err)
			os.Exit(2)
		}
	}
	os.Exit(testenv.Main(m))
}
