package agent_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/metastore"
)

// TestInternalTopicsInMetadata: __consumer_offsets (50 partitions) and
// __transaction_state are listed as internal, by name and in an
// all-topics request, without being created in the store; a name starting
// with "__" is never auto-created.
func TestInternalTopicsInMetadata(t *testing.T) {
	forEachBackend(t, testInternalTopicsInMetadata)
}

func testInternalTopicsInMetadata(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil) // auto.create.topics on
	cl := ta.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	metadata := func(topics ...string) *kmsg.MetadataResponse {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		req.AllowAutoTopicCreation = true
		if topics != nil {
			req.Topics = []kmsg.MetadataRequestTopic{}
		}
		for _, n := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(n)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	createTopic(t, cl, "plain", 1, nil)
	all := metadata()
	internal := map[string]int{}
	for _, mt := range all.Topics {
		if mt.IsInternal {
			internal[*mt.Topic] = len(mt.Partitions)
		} else if strings.HasPrefix(*mt.Topic, "__") {
			t.Errorf("topic %s listed, not internal", *mt.Topic)
		}
	}
	if internal["__consumer_offsets"] != 50 || internal["__transaction_state"] != 50 || len(internal) != 2 {
		t.Fatalf("internal topics listed: %v", internal)
	}

	named := metadata("__consumer_offsets", "__transaction_state", "__anything", "plain")
	for _, mt := range named.Topics {
		switch name := *mt.Topic; name {
		case "__consumer_offsets", "__transaction_state":
			if mt.ErrorCode != 0 || !mt.IsInternal || len(mt.Partitions) != 50 || mt.TopicID == [16]byte{} {
				t.Errorf("%s: code %d internal %v partitions %d id %x", name, mt.ErrorCode, mt.IsInternal, len(mt.Partitions), mt.TopicID)
			}
		case "__anything":
			if mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
				t.Errorf("__anything with auto-create: code %d, want UNKNOWN_TOPIC_OR_PARTITION", mt.ErrorCode)
			}
		case "plain":
			if mt.ErrorCode != 0 || mt.IsInternal {
				t.Errorf("plain: code %d internal %v", mt.ErrorCode, mt.IsInternal)
			}
		}
	}
	for _, name := range []string{"__anything", "__consumer_offsets", "__transaction_state"} {
		if _, err := ta.store.Topic(ctx, name); !errors.Is(err, metastore.ErrUnknownTopic) {
			t.Errorf("store has topic %s: %v", name, err)
		}
	}
	// The same id every time, by id too (Metadata v10+).
	var id [16]byte
	for _, mt := range named.Topics {
		if *mt.Topic == "__consumer_offsets" {
			id = mt.TopicID
		}
	}
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.TopicID = id
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || *resp.Topics[0].Topic != "__consumer_offsets" {
		t.Fatalf("metadata by id: %v %+v", err, resp)
	}
}

// TestInternalTopicsRefuseWrites: clients cannot produce to, create,
// delete, grow or reconfigure the internal topics, each refused with a
// Kafka error code; they can describe their configs.
func TestInternalTopicsRefuseWrites(t *testing.T) {
	forEachBackend(t, testInternalTopicsRefuseWrites)
}

func testInternalTopicsRefuseWrites(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const topic = "__consumer_offsets"

	if code := rawProduce(t, cl, topic, 0, batch("x")); code != kerr.InvalidTopicException.Code {
		t.Errorf("produce: code %d, want INVALID_TOPIC_EXCEPTION", code)
	}
	if code := rawProduce(t, cl, "__transaction_state", 3, batch("x")); code != kerr.InvalidTopicException.Code {
		t.Errorf("produce to __transaction_state: code %d, want INVALID_TOPIC_EXCEPTION", code)
	}
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, topic); !errors.Is(r.Err, kerr.TopicAlreadyExists) {
		t.Errorf("create: %v %v, want TOPIC_ALREADY_EXISTS", err, r.Err)
	}
	if r, err := adm.DeleteTopics(ctx, topic); err != nil || !errors.Is(r[topic].Err, kerr.InvalidTopicException) {
		t.Errorf("delete: %v %+v, want INVALID_TOPIC_EXCEPTION", err, r)
	}
	if r, err := adm.UpdatePartitions(ctx, 60, topic); err != nil || !errors.Is(r[topic].Err, kerr.InvalidPartitions) {
		t.Errorf("create partitions: %v %+v, want INVALID_PARTITIONS", err, r)
	}
	if r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1000")}}, topic); err == nil && (len(r) != 1 || !errors.Is(r[0].Err, kerr.InvalidRequest)) {
		t.Errorf("alter configs: %+v, want INVALID_REQUEST", r)
	} else if err != nil && !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("alter configs: %v, want INVALID_REQUEST", err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rcs.On(topic, nil); err != nil || v.Err != nil || !hasConfig(v.Configs, "cleanup.policy", "compact") {
		t.Errorf("describe configs: %v %+v", err, v)
	}
	// Still there, still internal, still 50 partitions.
	md, err := adm.Metadata(ctx, topic)
	if err != nil || md.Topics[topic].Err != nil || !md.Topics[topic].IsInternal || len(md.Topics[topic].Partitions) != 50 {
		t.Fatalf("after the refusals: %v %+v", err, md.Topics[topic])
	}
}

func hasConfig(cs []kadm.Config, name, value string) bool {
	for _, c := range cs {
		if c.Key == name && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

// offsetRecord is a record of __consumer_offsets decoded as Kafka's
// offset commit key and value.
type offsetRecord struct {
	partition int32
	offset    int64
	key       kmsg.OffsetCommitKey
	value     kmsg.OffsetCommitValue
}

func decodeOffsetRecord(t *testing.T, r *kgo.Record) offsetRecord {
	t.Helper()
	var k kmsg.OffsetCommitKey
	var v kmsg.OffsetCommitValue
	if err := k.ReadFrom(r.Key); err != nil {
		t.Fatalf("key at %d/%d: %v", r.Partition, r.Offset, err)
	}
	if err := v.ReadFrom(r.Value); err != nil {
		t.Fatalf("value at %d/%d: %v", r.Partition, r.Offset, err)
	}
	return offsetRecord{r.Partition, r.Offset, k, v}
}

// TestConsumeConsumerOffsets: a franz-go consumer reads __consumer_offsets
// and finds a group's committed offsets, decoded with Kafka's key and value
// schema, in the partition Kafka's hash gives the group; ListOffsets
// agrees with what a fetch sees; a long poll wakes on a commit; kcat
// consumes the topic to its end without an error.
func TestConsumeConsumerOffsets(t *testing.T) {
	forEachBackend(t, testConsumeConsumerOffsets)
}

func testConsumeConsumerOffsets(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const group = "my-group" // partition 12 of __consumer_offsets, as in Kafka
	const part = 12
	createTopic(t, cl, "orders", 2, nil)
	for i := range 10 {
		if code := rawProduce(t, cl, "orders", int32(i%2), batch("x")); code != 0 {
			t.Fatalf("produce: %d", code)
		}
	}
	commit := func(p int32, at int64) {
		t.Helper()
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: "orders", Partition: p, At: at, LeaderEpoch: -1, Metadata: "m"})
		if r, err := adm.CommitOffsets(ctx, group, offs); err != nil || r.Error() != nil {
			t.Fatalf("commit offsets: %v %v", err, r.Error())
		}
	}
	commit(0, 2)
	commit(1, 5)
	commit(0, 3) // rewrites partition 0: the log keeps only this value

	// The ends: every partition starts at 0; the group's has three writes.
	starts, err := adm.ListStartOffsets(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(50) {
		s, _ := starts.Lookup("__consumer_offsets", p)
		e, _ := ends.Lookup("__consumer_offsets", p)
		want := int64(0)
		if p == part {
			want = 3
		}
		if s.Err != nil || e.Err != nil || s.Offset != 0 || e.Offset != want {
			t.Fatalf("partition %d: start %+v end %+v, want 0 and %d", p, s, e, want)
		}
	}

	consumer := ta.client(t, kgo.ConsumeTopics("__consumer_offsets"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond)) // its last long poll ends soon after it closes
	var got []offsetRecord
	for len(got) < 2 {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, decodeOffsetRecord(t, r)) })
	}
	want := []string{"12/1 my-group orders/1 = 5", "12/2 my-group orders/0 = 3"}
	for i, r := range got {
		s := fmt.Sprintf("%d/%d %s %s/%d = %d", r.partition, r.offset, r.key.Group, r.key.Topic, r.key.Partition, r.value.Offset)
		if i >= len(want) || s != want[i] || r.key.Version != 1 || r.value.Version != 3 || r.value.Metadata != "m" || r.value.CommitTimestamp <= 0 {
			t.Fatalf("record %d: %s (%+v %+v), want %v", i, s, r.key, r.value, want)
		}
	}

	// ListOffsets by timestamp and max timestamp: record timestamps are
	// commit times.
	listAt := func(ts int64) (int64, int64) {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "__consumer_offsets"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = part, ts
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("list offsets at %d: %v", ts, kerr.ErrorForCode(p.ErrorCode))
		}
		return p.Offset, p.Timestamp
	}
	newest := got[0]
	if got[1].value.CommitTimestamp > newest.value.CommitTimestamp {
		newest = got[1]
	}
	if off, ts := listAt(-3); off != newest.offset || ts != newest.value.CommitTimestamp {
		t.Errorf("max timestamp: offset %d at %d, want %d at %d", off, ts, newest.offset, newest.value.CommitTimestamp)
	}
	if off, ts := listAt(got[1].value.CommitTimestamp); off < got[0].offset || off > got[1].offset || ts != got[off-got[0].offset].value.CommitTimestamp {
		t.Errorf("by the last commit's time: offset %d at %d, want at most %d", off, ts, got[1].offset)
	}
	if off, _ := listAt(got[1].value.CommitTimestamp + 3_600_000); off != -1 {
		t.Errorf("an hour after the last commit: offset %d, want -1", off)
	}

	// A fetch waiting at the end is answered when the next commit lands:
	// it would wait ten minutes otherwise, past the test's deadline.
	consumer.Close()
	poll.Until(t, "the consumer's long polls to end", func() bool { return ta.Stats().FetchesWaiting.Load() == 0 })
	md, err := adm.Metadata(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	fetched := longPollOffsets(t, ctx, cl, md.Topics["__consumer_offsets"].ID, part, 3)
	poll.Until(t, "the long poll to wait", func() bool { return ta.Stats().FetchesWaiting.Load() == 1 })
	commit(1, 8)
	resp := <-fetched
	if resp == nil {
		t.FailNow()
	}
	fp := resp.Topics[0].Partitions[0]
	var rb kmsg.RecordBatch
	if fp.ErrorCode != 0 || fp.HighWatermark != 4 || rb.ReadFrom(fp.RecordBatches) != nil || rb.FirstOffset != 3 || rb.NumRecords != 1 {
		t.Fatalf("long poll answered code %d, high watermark %d, batch %+v", fp.ErrorCode, fp.HighWatermark, rb)
	}

	// kcat reads every partition to its end without an error.
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not found (apt-get install kcat): %v", err)
	}
	out, err := exec.CommandContext(ctx, kcat, "-b", ta.addr, "-C", "-t", "__consumer_offsets", "-e", "-q", "-f", "%p/%o\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	// orders/1 was committed again at 3: 1 is gone from the log.
	if lines := strings.Fields(string(out)); len(lines) != 2 || lines[0] != "12/2" || lines[1] != "12/3" {
		t.Fatalf("kcat read %q, want 12/2 and 12/3", out)
	}
}

// TestConsumerOffsetsLongPollWakesAcrossAgents: a long poll on
// __consumer_offsets on agent B is answered when offsets are committed
// through another agent's store connection (Postgres notifications), not
// at its MaxWait of ten minutes, past the test's deadline.
func TestConsumerOffsetsLongPollWakesAcrossAgents(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, "", "")
	a, b := agents[0], agents[1]
	clB := b.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	md, err := kadm.NewClient(clB).Metadata(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	// To B itself: a client would route a fetch to the leader.
	fetched := longPollOffsets(t, ctx, clB.SeedBrokers()[0], md.Topics["__consumer_offsets"].ID, 12, 0) // my-group's
	poll.Until(t, "the long poll to wait on B", func() bool { return b.Stats().FetchesWaiting.Load() == 1 })
	if err := a.store.CommitOffsets(ctx, "my-group", []metastore.CommittedOffset{{Topic: "t", Partition: 3, Offset: 42, LeaderEpoch: -1}}); err != nil {
		t.Fatal(err)
	}
	wantOneOffsetRecord(t, <-fetched)
}

// TestConsumerOffsetsLongPollWakesOnTransactionalCommit: offsets a
// transaction commits (TxnOffsetCommit, applied when EndTxn completes the
// commit) wake a long poll on the group's partition of __consumer_offsets
// on the same agent, which on SQLite (silt dev) has no store
// notifications to learn it from.
func TestConsumerOffsetsLongPollWakesOnTransactionalCommit(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, nil)
	cl := ta.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const group, txnID = "txg", "tx-offsets"
	md, err := kadm.NewClient(cl).Metadata(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	fetched := longPollOffsets(t, ctx, cl, md.Topics["__consumer_offsets"].ID, metastore.OffsetsPartition(group), 0)
	poll.Until(t, "the long poll to wait", func() bool { return ta.Stats().FetchesWaiting.Load() == 1 })

	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr(txnID), 60000
	ir, err := init.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(ir.ErrorCode)
	}
	if err != nil {
		t.Fatalf("init producer id: %v", err)
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, ir.ProducerID, ir.ProducerEpoch, group
	if ar, err := add.RequestWith(ctx, cl); err != nil || ar.ErrorCode != 0 {
		t.Fatalf("add offsets to txn: %v %v", err, ar)
	}
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch, commit.Generation = txnID, group, ir.ProducerID, ir.ProducerEpoch, -1
	ct := kmsg.NewTxnOffsetCommitRequestTopic()
	ct.Topic = "in"
	cp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	cp.Partition, cp.Offset, cp.LeaderEpoch = 0, 42, -1
	ct.Partitions = append(ct.Partitions, cp)
	commit.Topics = append(commit.Topics, ct)
	if cr, err := commit.RequestWith(ctx, cl); err != nil || cr.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("txn offset commit: %v %+v", err, cr)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = txnID, ir.ProducerID, ir.ProducerEpoch, true
	if er, err := end.RequestWith(ctx, cl); err != nil || er.ErrorCode != 0 {
		t.Fatalf("end txn: %v %+v", err, er)
	}
	wantOneOffsetRecord(t, <-fetched)
}

// wantOneOffsetRecord fails the test unless a long poll of a group's
// __consumer_offsets partition answered with its one commit record (nil:
// the poll failed and said why).
func wantOneOffsetRecord(t *testing.T, resp *kmsg.FetchResponse) {
	t.Helper()
	if resp == nil {
		t.FailNow()
	}
	fp := resp.Topics[0].Partitions[0]
	var rb kmsg.RecordBatch
	if fp.ErrorCode != 0 || fp.HighWatermark != 1 || rb.ReadFrom(fp.RecordBatches) != nil || rb.NumRecords != 1 {
		t.Fatalf("long poll answered code %d, high watermark %d, batch %+v", fp.ErrorCode, fp.HighWatermark, rb)
	}
}

// longPollOffsets sends a Fetch of __consumer_offsets partition part
// from offset, with a MaxWait of ten minutes (past any test's deadline),
// through send (a client, or one of its brokers), and delivers the
// response (nil on error).
func longPollOffsets(t *testing.T, ctx context.Context, send kmsg.Requestor, topicID [16]byte, part int32, offset int64) <-chan *kmsg.FetchResponse {
	fetched := make(chan *kmsg.FetchResponse, 1)
	go func() {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = int32((10 * time.Minute).Milliseconds()), 1, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "__consumer_offsets", topicID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = part, offset, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, send)
		if err != nil {
			t.Errorf("long poll: %v", err)
		}
		fetched <- resp
	}()
	return fetched
}

// TestConsumerOffsetsACLs: with ACLs, __consumer_offsets is authorized like
// any topic (as in Kafka): hidden from a listing and unreadable without
// DESCRIBE and READ on it, readable with them; produce stays refused.
func TestConsumerOffsetsACLs(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, withACLs(nil))
	admin, alice := ta.as(t, "admin"), ta.as(t, "alice")
	const topic = "__consumer_offsets"
	var id [16]byte
	for _, mt := range request(t, admin, kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse).Topics {
		if mt.Topic != nil && *mt.Topic == topic {
			id = mt.TopicID
		}
	}
	fetch := func(cl *kgo.Client) int16 {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MaxBytes = 0, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return request(t, cl, req).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode
	}
	listed := func(cl *kgo.Client) bool {
		t.Helper()
		for _, mt := range request(t, cl, kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse).Topics {
			if mt.Topic != nil && *mt.Topic == topic {
				return true
			}
		}
		return false
	}
	if listed(alice) {
		t.Error("listed to a principal without DESCRIBE")
	}
	wantCode(t, "fetch without READ", fetch(alice), kerr.TopicAuthorizationFailed)
	if !listed(admin) {
		t.Error("not listed to a super user")
	}
	wantCode(t, "fetch by a super user", fetch(admin), nil)
	createACLs(t, admin, allow(rtTopic, topic, "alice", kmsg.ACLOperationRead))
	poll.Until(t, "alice's READ to apply", func() bool { return fetch(alice) == 0 })
	if !listed(alice) { // READ implies DESCRIBE, as in Kafka
		t.Error("not listed to a principal with READ")
	}
	createACLs(t, admin, allow(rtTopic, topic, "alice", kmsg.ACLOperationWrite))
	poll.Until(t, "alice's WRITE to apply", func() bool {
		return rawProduce(t, alice, topic, 0, batch("x")) == kerr.InvalidTopicException.Code
	})
}
