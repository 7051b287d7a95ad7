package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/jobs"
	"github.com/siltstream/silt/partition"
	"github.com/siltstream/silt/segment"
)

// keyedScale is the keyed compaction scenario's size: keys × updates.
// SILT_KEYED_KEYS and SILT_KEYED_UPDATES run it larger (the issue's
// 10,000 × 50) by hand.
func keyedScale(t *testing.T) (keys, updates int) {
	keys, updates = 2000, 10
	for _, v := range []struct {
		env string
		n   *int
	}{{"SILT_KEYED_KEYS", &keys}, {"SILT_KEYED_UPDATES", &updates}} {
		if s := os.Getenv(v.env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q", v.env, s)
			}
			*v.n = n
		}
	}
	return keys, updates
}

// readAll reads partition 0 of topic from the start with a fresh client
// until it has the record at offset last, and checks offsets strictly
// increase.
func readAll(t *testing.T, ta *testAgent, topic string, iso kgo.IsolationLevel, last int64) []*kgo.Record {
	t.Helper()
	cl := ta.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(iso), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	pos := int64(-1)
	for pos < last {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s to %d: stuck after offset %d (%d records)", topic, last, pos, len(out))
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset <= pos {
				t.Fatalf("offset %d after %d", r.Offset, pos)
			}
			pos = r.Offset
			out = append(out, r)
		})
	}
	return out
}

// keyMap is what a consumer rebuilds: a tombstone deletes its key.
func keyMap(rs []*kgo.Record) map[string]string {
	m := map[string]string{}
	for _, r := range rs {
		if r.Value == nil {
			delete(m, string(r.Key))
		} else {
			m[string(r.Key)] = string(r.Value)
		}
	}
	return m
}

// TestKeyedCompaction is the "keyed compaction is right" scenario,
// scaled for test time: keys × updates with 10% tombstones in the last
// round, through the agent. After compaction and cleaning, a consumer
// from earliest rebuilds exactly the expected map, reads each key once at
// the offset its latest record was written at, offsets strictly
// increasing; kcat reads it; the partition's stored bytes shrank; after
// delete.retention.ms a later pass removes the tombstones.
func TestKeyedCompaction(t *testing.T) {
	forEachBackend(t, testKeyedCompaction)
}

func testKeyedCompaction(t *testing.T, bk backend) {
	if !partition.HasRealOffsets(jobs.CleanedPrefix+"x") || !partition.HasRealOffsets(jobs.CompactedPrefix+"x") {
		t.Fatal("the read path does not know the compacted segments' key prefixes")
	}
	keys, updates := keyedScale(t)
	ta := startAgent(t, bk, func(c *agent.Config) {
		c.CompactionInterval = time.Hour // run by hand below
		c.GCGrace = 0
	})
	const topic = "keyed"
	cl := ta.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1<<20))
	deleteRetention := "2000"
	createTopic(t, cl, topic, 1, map[string]*string{"cleanup.policy": ptr("compact"), "delete.retention.ms": &deleteRetention})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	want := map[string]string{}
	lastOffset := map[string]int64{}
	tombstones := 0
	produce := func(recs []*kgo.Record) {
		t.Helper()
		res := cl.ProduceSync(ctx, recs...)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, pr := range res {
			k := string(pr.Record.Key)
			lastOffset[k] = pr.Record.Offset
			if pr.Record.Value == nil {
				delete(want, k)
				tombstones++
			} else {
				want[k] = string(pr.Record.Value)
			}
		}
	}
	for u := 0; u < updates; u++ {
		var recs, deletes []*kgo.Record
		for k := 0; k < keys; k++ {
			r := &kgo.Record{Key: fmt.Appendf(nil, "key-%05d", k), Value: fmt.Appendf(nil, "value-%d-%d-%s", u, k, strings.Repeat("x", 40))}
			if u == updates-1 && k%10 == 0 {
				r.Value = nil
				deletes = append(deletes, r)
				continue
			}
			recs = append(recs, r)
		}
		produce(recs)
		// The tombstones last, in a batch of their own: once they are
		// removed, the log ends with an emptied batch that consumers
		// must step over.
		if len(deletes) > 0 {
			produce(deletes)
		}
	}
	hw := int64(keys * updates)
	tps := topicPartitions(t, ta, topic)
	bytesOf := func() int64 {
		b, err := ta.store.PartitionBytes(ctx, tps[0].Topic)
		if err != nil {
			t.Fatal(err)
		}
		return b[0]
	}
	before := readAll(t, ta, topic, kgo.ReadUncommitted(), hw-1)
	if len(before) != keys*updates || !maps.Equal(keyMap(before), want) {
		t.Fatalf("before cleaning: %d records", len(before))
	}
	writtenBytes := bytesOf()
	if _, err := ta.RunCompactionOnce(ctx); err != nil {
		t.Fatal(err)
	}
	compactedBytes := bytesOf()
	res, err := ta.RunCleanerOnce(ctx)
	if err != nil || res.Partitions != 1 || res.Segments == 0 || res.Partial != 0 {
		t.Fatalf("RunCleanerOnce = %+v, %v; want the partition cleaned", res, err)
	}
	cleanedBytes := bytesOf()
	t.Logf("%d keys × %d updates: stored bytes %d as written, %d compacted, %d after cleaning (%d records removed)",
		keys, updates, writtenBytes, compactedBytes, cleanedBytes, res.Removed)
	if cleanedBytes*int64(updates)/2 > compactedBytes {
		t.Fatalf("stored bytes %d after cleaning, %d before: want at most 2/updates of them", cleanedBytes, compactedBytes)
	}
	ta.RunJanitorOnce(ctx) // collects the replaced segments (gc.grace 0)

	check := func(a *testAgent, withTombstones bool, last int64) {
		t.Helper()
		got := readAll(t, a, topic, kgo.ReadUncommitted(), last)
		if !maps.Equal(keyMap(got), want) {
			t.Fatalf("after cleaning the consumer rebuilds %d keys, want %d", len(keyMap(got)), len(want))
		}
		n := len(want)
		if withTombstones {
			n += tombstones
		}
		if len(got) != n {
			t.Fatalf("read %d records after cleaning, want %d (each key once)", len(got), n)
		}
		for _, r := range got {
			if lastOffset[string(r.Key)] != r.Offset {
				t.Fatalf("record of %s at %d; its latest was written at %d", r.Key, r.Offset, lastOffset[string(r.Key)])
			}
			if r.Value == nil && !withTombstones {
				t.Fatalf("tombstone of %s at %d after delete.retention.ms", r.Key, r.Offset)
			}
		}
	}
	check(ta, true, hw-1)
	// ListOffsets by timestamp finds the first kept record, past the gap.
	firstKept := hw
	for _, o := range lastOffset {
		firstKept = min(firstKept, o)
	}
	l, err := kadm.NewClient(ta.client(t)).ListOffsetsAfterMilli(ctx, 0, topic)
	if err != nil || l.Error() != nil {
		t.Fatalf("list offsets after 0: %v %v", err, l.Error())
	}
	if o, _ := l.Lookup(topic, 0); o.Offset != firstKept {
		t.Fatalf("ListOffsets(0) = %d, want the first kept record's offset %d", o.Offset, firstKept)
	}
	// An agent that knows only the cleaned rows.
	fresh := startAgentOn(t, ta.store, ta.bucket, func(c *agent.Config) { c.ID = "agent-fresh"; c.CompactionInterval = time.Hour })
	check(fresh, true, hw-1)
	// Stop this one, so that ta leads and cleans again below. (With
	// SQLite, two agents sharing one store in a process get no
	// notifications from each other; TestKeyedCompactionByAnotherAgent
	// covers another agent's swap on Postgres.)
	fresh.stop(t)

	// kcat reads the compacted topic: each key once, at its latest offset.
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not found (apt-get install kcat): %v", err)
	}
	out, err := exec.CommandContext(ctx, kcat, "-b", ta.addr, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%o %k\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(want)+tombstones {
		t.Fatalf("kcat read %d records, want %d", len(lines), len(want)+tombstones)
	}
	for _, l := range lines {
		off, k, _ := strings.Cut(l, " ")
		if o, err := strconv.ParseInt(off, 10, 64); err != nil || lastOffset[k] != o {
			t.Fatalf("kcat: %q; the key's latest is at %d", l, lastOffset[k])
		}
	}

	// Past delete.retention.ms after the first cleaning, a pass removes
	// the tombstones (once ta leads the partition again).
	poll.Until(t, "tombstones removed after delete.retention.ms", func() bool {
		res, err := ta.RunCleanerOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res.Removed > 0
	})
	// The agent that cleaned stops reading the replaced rows at once,
	// before the collector deletes their object: kcat reads to the end of
	// the partition across the emptied batch, without the tombstones.
	out, err = exec.CommandContext(ctx, kcat, "-b", ta.addr, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%o %k\n").CombinedOutput()
	if n := len(strings.Split(strings.TrimSpace(string(out)), "\n")); err != nil || n != len(want) {
		t.Fatalf("kcat after the tombstones' removal: %v, %d records, want %d\n%s", err, n, len(want), out)
	}
	ta.RunJanitorOnce(ctx)
	if b := bytesOf(); b >= cleanedBytes {
		t.Fatalf("stored bytes %d after removing tombstones, %d before", b, cleanedBytes)
	} else {
		t.Logf("stored bytes %d after removing the %d tombstones", b, tombstones)
	}
	// The cleaned segment ends with the tombstones' batch, emptied.
	rows := storeIndex(t, ta.store, tps[0])
	seg, err := segment.Open(ctx, ta.bucket, rows[len(rows)-1].SegmentKey)
	if err != nil {
		t.Fatal(err)
	}
	chunk, err := seg.ReadChunk(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lastBatch segment.BatchHeader
	for it := segment.NewBatchIter(chunk); it.Next(); {
		lastBatch = it.Header()
	}
	if lastBatch.NumRecords != 0 || lastBatch.BaseOffset+lastBatch.OffsetCount() != hw {
		t.Fatalf("last batch of the cleaned segment %+v; want the emptied tombstones' batch ending at %d", lastBatch, hw)
	}
	// A record after the emptied batch: a consumer reads up to it.
	produce([]*kgo.Record{{Key: []byte("sentinel"), Value: []byte("s")}})
	check(ta, false, lastOffset["sentinel"])
	check(startAgentOn(t, ta.store, ta.bucket, func(c *agent.Config) { c.ID = "agent-late"; c.CompactionInterval = time.Hour }), false, lastOffset["sentinel"])
}

// Produce of a record without a key to a compacted topic is refused as
// Kafka refuses it: INVALID_RECORD.
func TestKeyedTopicRefusesNullKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ta := startAgent(t, bk, nil)
		cl := ta.client(t, kgo.DefaultProduceTopic("kn"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		createTopic(t, cl, "kn", 1, map[string]*string{"cleanup.policy": ptr("compact,delete")})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("1")}, &kgo.Record{Value: []byte("no key")}).FirstErr()
		if err != kerr.InvalidRecord {
			t.Fatalf("produce without a key to a compacted topic: %v; want INVALID_RECORD", err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: nil}).FirstErr(); err != nil {
			t.Fatalf("a tombstone with a key: %v", err)
		}
	})
}

// Keyed compaction removes aborted transactions' records: read_uncommitted
// consumers see them before cleaning, as in Kafka, and neither
// read_uncommitted nor read_committed consumers after; an aborted update
// of a key never hides the key's committed value.
func TestKeyedCompactionRemovesAborted(t *testing.T) {
	forEachBackend(t, testKeyedCompactionRemovesAborted)
}

func testKeyedCompactionRemovesAborted(t *testing.T, bk backend) {
	ta := startAgent(t, bk, func(c *agent.Config) {
		c.CompactionInterval = time.Hour
		c.GCGrace = 0
	})
	const topic = "keyed-txn"
	cl := ta.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, topic, 1, map[string]*string{"cleanup.policy": ptr("compact")})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	put := func(c *kgo.Client, value string, keys ...string) {
		t.Helper()
		var recs []*kgo.Record
		for _, k := range keys {
			recs = append(recs, &kgo.Record{Key: []byte(k), Value: []byte(value)})
		}
		if err := c.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var all, low []string
	for i := 0; i < 10; i++ {
		all = append(all, fmt.Sprintf("a-%d", i))
	}
	low = all[:5]
	put(cl, "c1", all...)
	txc := ta.client(t, kgo.TransactionalID("keyed-tx"), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	transact := func(commit bool, value string, keys ...string) {
		t.Helper()
		if err := txc.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		put(txc, value, keys...)
		if err := txc.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	transact(true, "c2", low...)
	transact(false, "aborted", all...)
	// A later transaction of the same producer, committed: after cleaning,
	// its data follows an abort marker whose data is gone, and
	// read_committed consumers must still read it.
	transact(true, "c3", "late")
	res := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("tail"), Value: []byte("t")})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	last := res[0].Record.Offset
	want := map[string]string{"tail": "t", "late": "c3"}
	for _, k := range all {
		want[k] = "c1"
	}
	for _, k := range low {
		want[k] = "c2"
	}
	countAborted := func(rs []*kgo.Record) (n int) {
		for _, r := range rs {
			if string(r.Value) == "aborted" {
				n++
			}
		}
		return n
	}
	if got := readAll(t, ta, topic, kgo.ReadUncommitted(), last); countAborted(got) != 10 {
		t.Fatalf("read_uncommitted before cleaning saw %d aborted records, want 10", countAborted(got))
	}
	if got := readAll(t, ta, topic, kgo.ReadCommitted(), last); countAborted(got) != 0 || !maps.Equal(keyMap(got), want) {
		t.Fatalf("read_committed before cleaning: %d aborted, map %v", countAborted(got), keyMap(got))
	}
	if _, err := ta.RunCompactionOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := ta.RunCleanerOnce(ctx); err != nil || res.Partitions != 1 {
		t.Fatalf("RunCleanerOnce = %+v, %v", res, err)
	}
	ta.RunJanitorOnce(ctx)
	for _, iso := range []kgo.IsolationLevel{kgo.ReadUncommitted(), kgo.ReadCommitted()} {
		got := readAll(t, ta, topic, iso, last)
		if countAborted(got) != 0 || !maps.Equal(keyMap(got), want) || len(got) != len(want) {
			t.Fatalf("after cleaning (%v): %d records, %d aborted, map %v; want %v", iso, len(got), countAborted(got), keyMap(got), want)
		}
	}
}

// The agent cleans on its own, every compaction.interval after compacting,
// the partitions it leads.
func TestKeyedCompactionInBackground(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ta := startAgent(t, bk, func(c *agent.Config) {
			c.CompactionInterval = 50 * time.Millisecond
			c.GCGrace = 0
		})
		const topic = "keyed-bg"
		cl := ta.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		// Any dirty byte is worth a pass, so the last round is cleaned
		// whatever its compressed size against the cleaned ones.
		createTopic(t, cl, topic, 1, map[string]*string{"cleanup.policy": ptr("compact"), "min.cleanable.dirty.ratio": ptr("0.01")})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for u := 0; u < 3; u++ {
			var recs []*kgo.Record
			for k := 0; k < 100; k++ {
				recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "v%d", u)})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		tp := topicPartitions(t, ta, topic)[0]
		poll.Until(t, "the partition cleaned in the background", func() bool {
			rows := storeIndex(t, ta.store, tp)
			return len(rows) == 1 && strings.HasPrefix(rows[0].SegmentKey, jobs.CleanedPrefix)
		})
		got := readAll(t, ta, topic, kgo.ReadUncommitted(), 299)
		if len(got) != 100 || got[0].Offset != 200 || string(got[0].Value) != "v2" {
			t.Fatalf("after background cleaning: %d records from offset %d", len(got), got[0].Offset)
		}
	})
}

// Another agent's cleaning reaches this agent's readers through the
// store's notification (Postgres): they stop reading the replaced rows,
// whose objects stay in the bucket for gc.grace, at once.
func TestKeyedCompactionByAnotherAgent(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, postgresMinIO, func(c *agent.Config) {
		c.CompactionInterval = time.Hour
		c.GCGrace = time.Hour // the replaced objects stay readable
	})
	const topic = "keyed-other"
	cl := ta.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, topic, 1, map[string]*string{"cleanup.policy": ptr("compact")})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for u := 0; u < 3; u++ {
		var recs []*kgo.Record
		for k := 0; k < 100; k++ {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "v%d", u)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ta.RunCompactionOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, ta, topic, kgo.ReadUncommitted(), 299); len(got) != 300 {
		t.Fatalf("before cleaning: %d records", len(got))
	}
	// Cleaned by a cleaner that is not this agent's.
	other := &jobs.Cleaner{AgentID: "other", Store: ta.store, Bucket: ta.bucket, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), SegmentBytes: 1 << 20, DedupeBufferBytes: 1 << 20}
	if res, err := other.CleanOnce(ctx); err != nil || res.Segments != 1 {
		t.Fatalf("CleanOnce = %+v, %v", res, err)
	}
	poll.Until(t, "the agent reads the cleaned rows", func() bool {
		return len(readAll(t, ta, topic, kgo.ReadUncommitted(), 299)) == 100
	})
}
