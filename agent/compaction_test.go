package agent_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/jobs"
	"github.com/siltstream/silt/metastore"
)

// consumed is one record as a consumer saw it.
type consumed struct {
	Partition int32
	Offset    int64
	Key       string
	Value     string
	Headers   string
	Timestamp int64 // Unix ms
}

// consumeN reads topic from the start with cl's isolation level until it
// has want records, and returns them in (partition, offset) order.
func consumeN(t *testing.T, cl *kgo.Client, want int) []consumed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []consumed
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", len(out), want)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { out = append(out, consumedOf(r)) })
	}
	return sortConsumed(out)
}

func consumedOf(r *kgo.Record) consumed {
	var h []string
	for _, x := range r.Headers {
		h = append(h, x.Key+"="+string(x.Value))
	}
	return consumed{Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value), Headers: strings.Join(h, ","),
		Timestamp: r.Timestamp.UnixMilli()}
}

func sortConsumed(rs []consumed) []consumed {
	out := append([]consumed(nil), rs...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && (out[j].Partition < out[j-1].Partition ||
			out[j].Partition == out[j-1].Partition && out[j].Offset < out[j-1].Offset); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func consumerOf(t *testing.T, ta *testAgent, topic string, iso kgo.IsolationLevel, opts ...kgo.Opt) *kgo.Client {
	return ta.client(t, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
}

// TestCompactionReadsBack: flush segments of two partitions, with keys,
// headers and a committed and an aborted transaction, are compacted into
// per-partition segments and their old objects collected (gc.grace 0).
// Consumers then read the same records at the same offsets, read_committed
// still without the aborted ones: from a fresh agent, which knows only the
// compacted rows, and from the agent that wrote the data, whose cached
// rows name deleted objects. Data of a transaction still open is not
// compacted until it ends. A consumer that was reading through the
// compaction (its agent held the old rows) carries on without an error.
func TestCompactionReadsBack(t *testing.T) {
	forEachBackend(t, testCompactionReadsBack)
}

func testCompactionReadsBack(t *testing.T, bk backend) {
	ta := startAgent(t, bk, func(c *agent.Config) {
		c.CompactionInterval = time.Hour // run by hand below
		c.GCGrace = 0
	})
	const topic = "cmp"
	cl := ta.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, topic, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var committed, aborted int
	produce := func(round int) {
		t.Helper()
		var recs []*kgo.Record
		for p := int32(0); p < 2; p++ {
			for i := 0; i < 5; i++ {
				recs = append(recs, &kgo.Record{Partition: p, Key: fmt.Appendf(nil, "k-%d-%d", round, i),
					Value:   fmt.Appendf(nil, "%d-%d-%d-%s", round, p, i, strings.Repeat("x", i*40)),
					Headers: []kgo.RecordHeader{{Key: "round", Value: fmt.Appendf(nil, "%d", round)}, {Key: "i", Value: fmt.Appendf(nil, "%d", i)}}})
			}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		committed += len(recs)
	}
	produce(0)
	produce(1)
	txc := ta.client(t, kgo.TransactionalID("cmp-tx"), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	transactOn := func(commit bool, values ...string) {
		t.Helper()
		if err := txc.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if err := txc.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := txc.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		if commit {
			committed += len(values)
		} else {
			aborted += len(values)
		}
	}
	transactOn(true, "txn-c-0", "txn-c-1")
	transactOn(false, "txn-a-0", "txn-a-1", "txn-a-2")
	produce(2)

	all := consumeN(t, consumerOf(t, ta, topic, kgo.ReadUncommitted()), committed+aborted)
	stable := consumeN(t, consumerOf(t, ta, topic, kgo.ReadCommitted()), committed)
	for _, r := range stable {
		if strings.HasPrefix(r.Value, "txn-a") {
			t.Fatalf("read_committed saw aborted %+v", r)
		}
	}
	// A consumer part way through: it has read the first round of
	// partition 0 and goes on after compaction and collection.
	pinned := ta.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxPartitionBytes(1), kgo.FetchMaxBytes(1), kgo.FetchMaxWait(200*time.Millisecond))
	var pinnedGot []consumed
	for len(pinnedGot) < 5 {
		fs := pinned.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("pinned consumer got nothing")
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { pinnedGot = append(pinnedGot, consumedOf(r)) })
	}

	// A transaction left open: its data and everything after stays.
	if err := txc.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txc.ProduceSync(ctx, &kgo.Record{Value: []byte("txn-open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	res, err := ta.RunCompactionOnce(ctx)
	if err != nil || res.Segments != 2 {
		t.Fatalf("RunCompactionOnce = %+v, %v; want one segment per partition", res, err)
	}
	tps := topicPartitions(t, ta, topic)
	ps, err := ta.store.Partitions(ctx, tps[0].Topic)
	if err != nil {
		t.Fatal(err)
	}
	lso := ps[0].LastStableOffset
	if lso >= ps[0].HighWatermark {
		t.Fatalf("partition 0 %+v: want an open transaction holding the LSO", ps[0])
	}
	for _, r := range storeIndex(t, ta.store, tps[0]) {
		if compacted := strings.HasPrefix(r.SegmentKey, jobs.CompactedPrefix); compacted != (r.LastOffset < lso) {
			t.Fatalf("row %+v (LSO %d): compacted %v; want exactly the rows below the LSO compacted", r, lso, compacted)
		}
	}
	ta.RunJanitorOnce(ctx) // dooms and, gc.grace being 0, deletes the flush segments
	for _, r := range storeIndex(t, ta.store, tps[0]) {
		if r.LastOffset < lso {
			if _, err := ta.bucket.Head(ctx, r.SegmentKey); err != nil {
				t.Fatalf("compacted segment %s: %v", r.SegmentKey, err)
			}
		}
	}
	// The first read after it: the agent still holds the rows it
	// committed, whose objects are gone. It answers without an error, from
	// the compacted segment.
	if rp := rawFetch(t, cl, topic, 5, 0, 1, 1<<20); rp.ErrorCode != 0 || len(rp.RecordBatches) == 0 {
		t.Fatalf("fetch at 5 after compaction and collection: error %d, %d bytes", rp.ErrorCode, len(rp.RecordBatches))
	}

	// The pinned consumer's agent still holds the old rows; their objects
	// are gone; it re-resolves and carries on.
	for len(pinnedGot) < countPartition(stable, 0) {
		fs := pinned.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("pinned consumer stuck at %d records after compaction", len(pinnedGot))
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d after compaction: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { pinnedGot = append(pinnedGot, consumedOf(r)) })
	}
	if want := onlyPartition(stable, 0); !reflect.DeepEqual(pinnedGot, want) {
		t.Fatalf("pinned consumer read\n%v\nwant\n%v", pinnedGot, want)
	}

	if err := txc.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	committed++
	if res, err := ta.RunCompactionOnce(ctx); err != nil || res.Segments != 1 {
		t.Fatalf("compaction after the transaction ended = %+v, %v; want its rows compacted", res, err)
	}
	ta.RunJanitorOnce(ctx)
	for _, tp := range tps {
		for _, r := range storeIndex(t, ta.store, tp) {
			if !strings.HasPrefix(r.SegmentKey, jobs.CompactedPrefix) {
				t.Fatalf("row %+v not compacted", r)
			}
		}
	}
	for _, a := range []struct {
		name string
		ta   *testAgent
	}{
		{"writer", ta},
		{"fresh", startAgentOn(t, ta.store, ta.bucket, func(c *agent.Config) { c.ID = "agent-fresh"; c.CompactionInterval = time.Hour })},
	} {
		gotAll := consumeN(t, consumerOf(t, a.ta, topic, kgo.ReadUncommitted()), committed+aborted)
		gotStable := consumeN(t, consumerOf(t, a.ta, topic, kgo.ReadCommitted()), committed)
		// The records before compaction, and the transaction's record.
		var open []consumed
		for _, r := range gotStable {
			if r.Value == "txn-open" {
				open = append(open, r)
			}
		}
		if len(open) != 1 || open[0].Partition != 0 || open[0].Offset < lso {
			t.Fatalf("%s agent: read_committed read %+v of the transaction that was open at %d", a.name, open, lso)
		}
		wantAll := sortConsumed(append(append([]consumed(nil), all...), open[0]))
		wantStable := sortConsumed(append(append([]consumed(nil), stable...), open[0]))
		if !reflect.DeepEqual(gotAll, wantAll) {
			t.Fatalf("%s agent, read_uncommitted after compaction:\n%v\nwant\n%v", a.name, gotAll, wantAll)
		}
		if !reflect.DeepEqual(gotStable, wantStable) {
			t.Fatalf("%s agent, read_committed after compaction:\n%v\nwant\n%v", a.name, gotStable, wantStable)
		}
		// ListOffsets by timestamp searches the compacted segments: the
		// first record at or after each record's timestamp.
		for _, r := range onlyPartition(wantAll, 1) {
			want := r.Offset
			for _, o := range onlyPartition(wantAll, 1) {
				if o.Timestamp >= r.Timestamp && o.Offset < want {
					want = o.Offset
				}
			}
			l, err := kadm.NewClient(a.ta.client(t)).ListOffsetsAfterMilli(ctx, r.Timestamp, topic)
			if err != nil || l.Error() != nil {
				t.Fatalf("list offsets after %d: %v %v", r.Timestamp, err, l.Error())
			}
			if o, _ := l.Lookup(topic, 1); o.Offset != want {
				t.Fatalf("%s agent: ListOffsets(%d) on partition 1 = %d, want %d", a.name, r.Timestamp, o.Offset, want)
			}
		}
	}
}

func countPartition(rs []consumed, p int32) int { return len(onlyPartition(rs, p)) }

func onlyPartition(rs []consumed, p int32) []consumed {
	var out []consumed
	for _, r := range rs {
		if r.Partition == p {
			out = append(out, r)
		}
	}
	return out
}

func topicPartitions(t *testing.T, ta *testAgent, name string) []metastore.TopicPartition {
	t.Helper()
	top, err := ta.store.Topic(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var out []metastore.TopicPartition
	for p := int32(0); p < top.Partitions; p++ {
		out = append(out, metastore.TopicPartition{Topic: top.ID, Partition: p})
	}
	return out
}

func storeIndex(t *testing.T, st metastore.Store, tp metastore.TopicPartition) []metastore.IndexEntry {
	t.Helper()
	rows, err := st.Index(context.Background(), tp, 0, 1<<62, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
