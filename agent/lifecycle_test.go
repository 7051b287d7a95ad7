package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/cache"
	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/internal/promtest"
	"github.com/siltstream/silt/internal/testenv"
	"github.com/siltstream/silt/jobs"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/postgres"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/wire"
)

// quietJobs keeps the janitor's own loop out of a test that runs it by
// hand (RunJanitorOnce), so what it does happens when the test says.
func quietJobs(c *agent.Config) {
	c.CompactionInterval = time.Hour
	c.GCGrace = time.Hour
}

func startOffset(t *testing.T, cl *kgo.Client, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := kadm.NewClient(cl).ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := l.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("list start offset of %s: %v", topic, o.Err)
	}
	return o.Offset
}

// consumeAll reads topic from its start offset until it has want records.
func consumeAll(t *testing.T, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s", len(out), want, topic)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("consume %s: %v", topic, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// TestRetentionMovesLogStart: records older than retention.ms (old
// client-set timestamps, not waiting) expire when retention runs: ListOffsets
// earliest moves to the first kept record, a consumer from earliest sees
// only the kept records, and a fetch below answers OFFSET_OUT_OF_RANGE with
// the log start offset.
func TestRetentionMovesLogStart(t *testing.T) {
	forEachBackend(t, testRetentionMovesLogStart)
}

func testRetentionMovesLogStart(t *testing.T, bk backend) {
	ta := startAgent(t, bk, quietJobs)
	cl := ta.client(t, kgo.DefaultProduceTopic("ret"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "ret", 1, map[string]*string{"retention.ms": ptr("3600000")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produce := func(ts time.Time, values ...string) {
		t.Helper()
		var recs []*kgo.Record
		for _, v := range values {
			recs = append(recs, &kgo.Record{Value: []byte(v), Timestamp: ts})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Each ProduceSync is acknowledged after its flush: one index row each.
	produce(time.Now().Add(-48*time.Hour), "old-0", "old-1", "old-2")
	produce(time.Now().Add(-47*time.Hour), "old-3", "old-4")
	produce(time.Now(), "new-0", "new-1", "new-2")
	if o := startOffset(t, cl, "ret"); o != 0 {
		t.Fatalf("start offset before retention %d, want 0", o)
	}

	reg := prometheus.NewRegistry()
	if err := ta.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	ta.RunJanitorOnce(ctx)
	// The two expired segments are doomed, not deleted: gc.grace is an hour.
	m := promtest.Gather(t, reg)
	if m["silt_retention_expired_bytes_total"] <= 0 || m["silt_gc_backlog_objects"] != 2 || m["silt_gc_deleted_objects_total"] != 0 {
		t.Fatalf("lifecycle metrics after retention: expired bytes %v, backlog %v, deleted %v; want > 0, 2, 0",
			m["silt_retention_expired_bytes_total"], m["silt_gc_backlog_objects"], m["silt_gc_deleted_objects_total"])
	}

	if o := startOffset(t, cl, "ret"); o != 5 {
		t.Fatalf("start offset after retention %d, want 5 (the first kept record)", o)
	}
	recs := consumeAll(t, ta.addr, "ret", 3)
	for i, r := range recs {
		if want := fmt.Sprintf("new-%d", i); string(r.Value) != want || r.Offset != int64(5+i) {
			t.Fatalf("record %d: %q at %d, want %q at %d", i, r.Value, r.Offset, want, 5+i)
		}
	}
	rp := rawFetch(t, cl, "ret", 2, 0, 1, 1<<20)
	if rp.ErrorCode != kerr.OffsetOutOfRange.Code || rp.LogStartOffset != 5 {
		t.Fatalf("fetch below the log start: %v, log start %d; want OFFSET_OUT_OF_RANGE, 5", kerr.ErrorForCode(rp.ErrorCode), rp.LogStartOffset)
	}
	if rp := rawFetch(t, cl, "ret", 5, 0, 1, 1<<20); rp.ErrorCode != 0 || rp.LogStartOffset != 5 || len(rp.RecordBatches) == 0 {
		t.Fatalf("fetch at the log start: %v, log start %d, %d bytes", kerr.ErrorForCode(rp.ErrorCode), rp.LogStartOffset, len(rp.RecordBatches))
	}
}

// TestDeleteRecords: kadm's DeleteRecords moves the log start offset with
// Kafka's rules, and the agent answers by it.
func TestDeleteRecords(t *testing.T) {
	forEachBackend(t, testDeleteRecords)
}

func testDeleteRecords(t *testing.T, bk backend) {
	ta := startAgent(t, bk, quietJobs)
	cl := ta.client(t, kgo.DefaultProduceTopic("dr"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "dr", 1, nil)
	createTopic(t, cl, "compacted", 1, map[string]*string{"cleanup.policy": ptr("compact")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		var recs []*kgo.Record
		for j := 0; j < 5; j++ {
			recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("r%d", 5*i+j))})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	del := func(topic string, at int64) kadm.DeleteRecordsResponse {
		t.Helper()
		var os kadm.Offsets
		os.AddOffset(topic, 0, at, -1)
		res, err := adm.DeleteRecords(ctx, os)
		if err != nil {
			t.Fatal(err)
		}
		r, ok := res.Lookup(topic, 0)
		if !ok {
			t.Fatalf("no answer for %s", topic)
		}
		return r
	}
	if r := del("dr", 3); r.Err != nil || r.LowWatermark != 3 {
		t.Fatalf("delete records before 3: %v, low watermark %d", r.Err, r.LowWatermark)
	}
	if o := startOffset(t, cl, "dr"); o != 3 {
		t.Fatalf("ListOffsets earliest %d, want 3", o)
	}
	rp := rawFetch(t, cl, "dr", 1, 0, 1, 1<<20)
	if rp.ErrorCode != kerr.OffsetOutOfRange.Code || rp.LogStartOffset != 3 {
		t.Fatalf("fetch below the log start: %v, log start %d; want OFFSET_OUT_OF_RANGE, 3", kerr.ErrorForCode(rp.ErrorCode), rp.LogStartOffset)
	}
	recs := consumeAll(t, ta.addr, "dr", 7)
	if recs[0].Offset != 3 || string(recs[0].Value) != "r3" || recs[6].Offset != 9 {
		t.Fatalf("consumer from earliest starts at %d (%q), ends at %d; want 3 (r3) to 9", recs[0].Offset, recs[0].Value, recs[6].Offset)
	}
	if r := del("dr", 1); r.Err != nil || r.LowWatermark != 3 {
		t.Fatalf("delete records before 1 (behind the log start): %v, low watermark %d; want 3", r.Err, r.LowWatermark)
	}
	if r := del("dr", 11); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete records above the high watermark: %v, want OFFSET_OUT_OF_RANGE", r.Err)
	}
	if r := del("dr", -1); r.Err != nil || r.LowWatermark != 10 {
		t.Fatalf("delete records to the high watermark (-1): %v, low watermark %d; want 10", r.Err, r.LowWatermark)
	}
	if o := startOffset(t, cl, "dr"); o != 10 {
		t.Fatalf("ListOffsets earliest %d, want 10", o)
	}
	if r := del("compacted", 0); !errors.Is(r.Err, kerr.PolicyViolation) {
		t.Fatalf("delete records of a compacted topic: %v, want POLICY_VIOLATION", r.Err)
	}
	// Unknown topics: kadm resolves leaders first, so ask directly.
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "no-such-topic"
	rt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 0}}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("delete records of an unknown topic: %v", kerr.ErrorForCode(code))
	}
}

// TestPinnedReaderAcrossGC: agent B resolved index rows (a reader holding
// them), then the log start moves through agent A and the collector dooms
// the objects. Within gc.grace the objects stay (B still reads its
// records, or learns the new log start); once they are deleted, B, whose
// block cache holds nothing, finds them gone, re-reads the log start and
// answers OFFSET_OUT_OF_RANGE: never a server error.
func TestPinnedReaderAcrossGC(t *testing.T) {
	forEachBackend(t, testPinnedReaderAcrossGC)
}

func testPinnedReaderAcrossGC(t *testing.T, bk backend) {
	s := bk.newStorage(t)
	noCache := cache.DefaultConfig()
	noCache.MemoryBytes, noCache.ReadAheadBlocks = 0, 0
	plain := wire.Listener{Name: "PLAINTEXT", Protocol: wire.Plaintext}
	agentA := startAgentOn(t, s.openStore(t), s.bucket, func(c *agent.Config) { quietJobs(c); c.ID = "agent-a" })
	agentB := startAgentCached(t, s.openStore(t), s.bucket, func(c *agent.Config) { quietJobs(c); c.ID = "agent-b" }, noCache, plain)
	a := pinnedClient(t, agentA.addr).SeedBrokers()[0]
	b := pinnedClient(t, agentB.addr).SeedBrokers()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	createTopicAt(t, a, "pin")
	for _, v := range []string{"r0", "r1", "r2"} {
		produceTo(t, a, "pin", batch(v)) // one flush, one object each
	}
	topic, err := agentA.store.Topic(ctx, "pin")
	if err != nil {
		t.Fatal(err)
	}
	fetchB := func(off int64) kmsg.FetchResponseTopicPartition {
		t.Helper()
		return fetchFrom(t, b, "pin", topic.ID, off)
	}
	if rp := fetchB(0); rp.ErrorCode != 0 || !bytes.Contains(rp.RecordBatches, []byte("r0")) {
		t.Fatalf("fetch via b: %v", kerr.ErrorForCode(rp.ErrorCode))
	}
	rows, err := agentA.store.Index(ctx, metastore.TopicPartition{Topic: topic.ID}, 0, 1<<40, 100)
	if err != nil || len(rows) != 3 {
		t.Fatalf("index rows %+v, %v", rows, err)
	}

	// DeleteRecords through a, then a collection within the grace period.
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "pin"
	rt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: -1}}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, a)
	if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 || resp.Topics[0].Partitions[0].LowWatermark != 3 {
		t.Fatalf("delete records via a: %v %+v", err, resp)
	}
	agentA.RunJanitorOnce(ctx)
	if objs, _, err := agentA.store.GCBacklog(ctx); err != nil || objs != 3 {
		t.Fatalf("GC backlog %d, %v; want the 3 segments doomed", objs, err)
	}
	for _, r := range rows {
		if _, err := s.bucket.Head(ctx, r.SegmentKey); err != nil {
			t.Fatalf("segment %s deleted within gc.grace: %v", r.SegmentKey, err)
		}
	}
	for off := int64(0); off < 3; off++ {
		rp := fetchB(off)
		if rp.ErrorCode != 0 && rp.ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Fatalf("fetch at %d via b within grace: %v; want its records or OFFSET_OUT_OF_RANGE", off, kerr.ErrorForCode(rp.ErrorCode))
		}
		if rp.ErrorCode == 0 && !bytes.Contains(rp.RecordBatches, []byte(fmt.Sprintf("r%d", off))) {
			t.Fatalf("fetch at %d via b within grace: no error and not its record", off)
		}
	}

	// Past the grace period (a collector with none), the objects go.
	gc := &jobs.GC{Store: agentA.store, Bucket: s.bucket, Log: slog.Default(), OrphanMinAge: time.Hour, Grace: 0}
	if c, err := gc.CollectOnce(ctx); err != nil || c.Deleted != 3 {
		t.Fatalf("collect past grace: %+v, %v; want 3 deleted", c, err)
	}
	for _, r := range rows {
		if _, err := s.bucket.Head(ctx, r.SegmentKey); !objectstore.IsNotFound(err) {
			t.Fatalf("segment %s after collection: %v, want not found", r.SegmentKey, err)
		}
	}
	for off := int64(0); off < 3; off++ {
		rp := fetchB(off)
		if rp.ErrorCode != kerr.OffsetOutOfRange.Code || rp.LogStartOffset != 3 {
			t.Fatalf("fetch at %d via b after the objects went: %v, log start %d; want OFFSET_OUT_OF_RANGE, 3",
				off, kerr.ErrorForCode(rp.ErrorCode), rp.LogStartOffset)
		}
	}
	// The log goes on from the log start.
	produceTo(t, a, "pin", batch("r3"))
	if rp := fetchFrom(t, a, "pin", topic.ID, 3); rp.ErrorCode != 0 || !bytes.Contains(rp.RecordBatches, []byte("r3")) {
		t.Fatalf("fetch at 3 via a after the delete: %v", kerr.ErrorForCode(rp.ErrorCode))
	}
}

// TestDeleteTopicReclaimsBucket: deleting a topic returns the bucket,
// listed with minio-go (not Silt's driver), to what the remaining topic
// references, by the agent's own background job after gc.grace; a topic
// re-created under the name starts empty, with no committed offsets.
func TestDeleteTopicReclaimsBucket(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Postgres(t).NewDatabase(t)
	if err := postgres.Migrate(context.Background(), dbURL); err != nil {
		t.Fatal(err)
	}
	store, err := postgres.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	bucket, name := minioBucketNamed(t)
	ta := startAgentOn(t, store, bucket, func(c *agent.Config) {
		c.CompactionInterval = 50 * time.Millisecond
		c.CompactionSegmentBytes = 0 // retention and collection only: rows stay one per flush
		c.GCGrace = 200 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	listed := func() []string {
		var keys []string
		for o := range testenv.MinIO(t).Client().ListObjects(ctx, name, minio.ListObjectsOptions{Prefix: testenv.MinIOBucketPrefix + "/", Recursive: true}) {
			if o.Err != nil {
				t.Fatalf("list bucket %s: %v", name, o.Err)
			}
			keys = append(keys, strings.TrimPrefix(o.Key, testenv.MinIOBucketPrefix+"/"))
		}
		sort.Strings(keys)
		return keys
	}

	cl := ta.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "gone", 1, nil)
	createTopic(t, cl, "kept", 1, nil)
	for i := 0; i < 3; i++ {
		for _, topic := range []string{"gone", "kept"} {
			// One topic per flush, so the doomed topic's objects are its own.
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("%s-%d", topic, i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	adm := kadm.NewClient(cl)
	if err := adm.CommitAllOffsets(ctx, "g", kadm.OffsetsFromRecords(kgo.Record{Topic: "gone", Partition: 0, Offset: 2})); err != nil {
		t.Fatal(err)
	}
	kept, err := store.Topic(ctx, "kept")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := store.Index(ctx, metastore.TopicPartition{Topic: kept.ID}, 0, 1<<40, 100)
	if err != nil {
		t.Fatal(err)
	}
	var keptKeys []string
	for _, r := range rows {
		keptKeys = append(keptKeys, r.SegmentKey)
	}
	sort.Strings(keptKeys)
	if before := listed(); len(before) != 6 {
		t.Fatalf("bucket before the delete: %v; want 6 segments", before)
	}

	if r, err := adm.DeleteTopics(ctx, "gone"); err != nil || r["gone"].Err != nil {
		t.Fatalf("delete topic: %v %v", err, r["gone"].Err)
	}
	poll.Until(t, "the bucket to hold only what the remaining topic references", func() bool {
		return strings.Join(listed(), ",") == strings.Join(keptKeys, ",")
	})
	if recs := consumeAll(t, ta.addr, "kept", 3); string(recs[2].Value) != "kept-2" {
		t.Fatalf("kept topic after the collection: %q", recs[2].Value)
	}

	createTopic(t, cl, "gone", 1, nil)
	if o := startOffset(t, cl, "gone"); o != 0 {
		t.Fatalf("re-created topic starts at %d", o)
	}
	if ends := listEnds(t, cl, "gone"); ends[0] != 0 {
		t.Fatalf("re-created topic ends at %d, want empty", ends[0])
	}
	offs, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("gone", 0); ok {
		t.Fatalf("group g has offset %d on the re-created topic", o.At)
	}
}

// TestLogStartReachesOtherAgents: a log start moved through one agent
// reaches another's cache by the store's notification, not only by the
// re-read before an out-of-range answer: B's in-range fetches, which never
// re-read, come to carry the new log start offset.
func TestLogStartReachesOtherAgents(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, "", "")
	a := pinnedClient(t, agents[0].addr).SeedBrokers()[0]
	b := pinnedClient(t, agents[1].addr).SeedBrokers()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createTopicAt(t, a, "ls")
	for _, v := range []string{"r0", "r1", "r2"} {
		produceTo(t, a, "ls", batch(v))
	}
	topic, err := agents[0].store.Topic(ctx, "ls")
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "b to see the three records", func() bool {
		rp := fetchFrom(t, b, "ls", topic.ID, 2)
		return rp.ErrorCode == 0 && rp.HighWatermark == 3 && rp.LogStartOffset == 0
	})
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "ls"
	rt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 2}}
	req.Topics = append(req.Topics, rt)
	if resp, err := req.RequestWith(ctx, a); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("delete records via a: %v %+v", err, resp)
	}
	poll.Until(t, "b's fetch answers to carry the new log start", func() bool {
		rp := fetchFrom(t, b, "ls", topic.ID, 2)
		return rp.ErrorCode == 0 && rp.LogStartOffset == 2
	})
}

// TestACLDeleteRecords: DeleteRecords needs DELETE on the topic, as in
// Kafka; refused, it moves nothing.
func TestACLDeleteRecords(t *testing.T) {
	forEachBackend(t, testACLDeleteRecords)
}

func testACLDeleteRecords(t *testing.T, bk backend) {
	ta := startAgent(t, bk, withACLs(quietJobs))
	admin := ta.as(t, "admin")
	alice := ta.as(t, "alice")
	createTopic(t, admin, "x-topic", 1, nil)
	produceTo(t, admin.SeedBrokers()[0], "x-topic", batch("a", "b", "c"))
	deleteBefore := func(cl *kgo.Client, off int64) kmsg.DeleteRecordsResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrDeleteRecordsRequest()
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = "x-topic"
		rt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: off}}
		req.Topics = append(req.Topics, rt)
		return request(t, cl, req).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
	}
	createACLs(t, admin, allow(rtTopic, "x-topic", "alice", kmsg.ACLOperationRead), allow(rtTopic, "x-topic", "alice", kmsg.ACLOperationDescribe))
	rp := deleteBefore(alice, 2)
	wantCode(t, "delete records without DELETE", rp.ErrorCode, kerr.TopicAuthorizationFailed)
	if o := startOffset(t, admin, "x-topic"); o != 0 {
		t.Fatalf("a refused DeleteRecords moved the log start to %d", o)
	}
	createACLs(t, admin, allow(rtTopic, "x-topic", "alice", kmsg.ACLOperationDelete))
	poll.Until(t, "alice's DELETE to take effect", func() bool {
		rp = deleteBefore(alice, 2)
		return rp.ErrorCode == 0
	})
	if rp.LowWatermark != 2 {
		t.Fatalf("low watermark %d, want 2", rp.LowWatermark)
	}
}

// TestRetentionBytesInTheBackground: the agent's own janitor loop
// (compaction.interval) applies retention.bytes once it is set, and its
// collector deletes the expired segments after gc.grace, keeping the rest.
func TestRetentionBytesInTheBackground(t *testing.T) {
	forEachBackend(t, testRetentionBytesInTheBackground)
}

func testRetentionBytesInTheBackground(t *testing.T, bk backend) {
	ta := startAgent(t, bk, func(c *agent.Config) {
		c.CompactionInterval = 50 * time.Millisecond
		c.CompactionSegmentBytes = 0 // retention and collection only: rows stay one per flush
		c.GCGrace = 100 * time.Millisecond
	})
	cl := ta.client(t)
	createTopic(t, cl, "rb", 1, nil)
	for i := 0; i < 4; i++ {
		produceTo(t, cl.SeedBrokers()[0], "rb", batch(fmt.Sprintf("v%d", i))) // one flush, one object each
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic, err := ta.store.Topic(ctx, "rb")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ta.store.Index(ctx, metastore.TopicPartition{Topic: topic.ID}, 0, 1<<40, 100)
	if err != nil || len(rows) != 4 {
		t.Fatalf("index rows %+v, %v; want 4", rows, err)
	}
	// One byte: Kafka deletes the oldest segment while what remains after
	// it still reaches retention.bytes, so only the newest row stays.
	if _, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.bytes", Value: ptr("1")}}, "rb"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "retention.bytes to move the log start to the newest row", func() bool {
		return startOffset(t, cl, "rb") == 3
	})
	poll.Until(t, "the expired segments to leave the bucket", func() bool {
		for _, r := range rows[:3] {
			if _, err := ta.bucket.Head(ctx, r.SegmentKey); !objectstore.IsNotFound(err) {
				return false
			}
		}
		return true
	})
	if _, err := ta.bucket.Head(ctx, rows[3].SegmentKey); err != nil {
		t.Fatalf("the kept segment: %v", err)
	}
	if recs := consumeAll(t, ta.addr, "rb", 1); string(recs[0].Value) != "v3" || recs[0].Offset != 3 {
		t.Fatalf("consumer from earliest: %q at %d, want v3 at 3", recs[0].Value, recs[0].Offset)
	}
}

// TestDescribeProducersFollowsLogStart: kadm's DescribeProducers lists an
// idempotent producer (kgo's default) with its last sequence; once
// DeleteRecords moves the log start past all its data, its state is pruned
// and it is no longer listed.
func TestDescribeProducersFollowsLogStart(t *testing.T) {
	forEachBackend(t, testDescribeProducersFollowsLogStart)
}

func testDescribeProducersFollowsLogStart(t *testing.T, bk backend) {
	ta := startAgent(t, bk, quietJobs)
	cl := ta.client(t, kgo.DefaultProduceTopic("dp"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "dp", 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	var ts kadm.TopicsSet
	ts.Add("dp", 0)
	described := func() []kadm.DescribedProducer {
		t.Helper()
		d, err := adm.DescribeProducers(ctx, ts)
		if err != nil {
			t.Fatal(err)
		}
		return d.SortedProducers()
	}
	ps := described()
	if len(ps) != 1 || ps[0].LastSequence != 2 || ps[0].CurrentTxnStartOffset != -1 || ps[0].LastTimestamp <= 0 {
		t.Fatalf("producers %+v; want one idempotent producer at sequence 2, no transaction", ps)
	}
	var os kadm.Offsets
	os.AddOffset("dp", 0, -1, -1)
	if res, err := adm.DeleteRecords(ctx, os); err != nil || res["dp"][0].Err != nil {
		t.Fatalf("delete records: %v %v", err, res["dp"][0].Err)
	}
	if ps := described(); len(ps) != 0 {
		t.Fatalf("producers after the log start passed their data: %+v", ps)
	}
}
