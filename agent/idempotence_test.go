package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// idemBatch encodes a v2 batch from an idempotent producer.
func idemBatch(pid int64, epoch int16, seq int32, values ...string) []byte {
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2,
		LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp:  time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(),
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq, NumRecords: int32(len(values)),
	}
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		rb.Records = r.AppendTo(rb.Records)
	}
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	raw := rb.AppendTo(nil)
	rb.CRC = int32(crc32c(raw[21:]))
	return rb.AppendTo(nil)
}

// rawProduceOffset is rawProduce returning the base offset too.
func rawProduceOffset(t *testing.T, cl *kgo.Client, topic string, records []byte) (int16, int64) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}

// TestIdempotentProduce: a retried batch is acknowledged with its first
// offset and not appended again; a gap and a stale epoch are refused; an
// epoch bump (KIP-360) restarts sequences.
func TestIdempotentProduce(t *testing.T) {
	forEachBackend(t, testIdempotentProduce)
}

func testIdempotentProduce(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t)
	createTopic(t, cl, "idem", 1, nil)
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionTimeoutMillis = 60000
	ir, err := init.RequestWith(context.Background(), cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v %v", err, kerr.ErrorForCode(ir.ErrorCode))
	}
	pid, epoch := ir.ProducerID, ir.ProducerEpoch

	expect := func(what string, records []byte, wantCode int16, wantOffset int64) {
		t.Helper()
		code, off := rawProduceOffset(t, cl, "idem", records)
		if code != wantCode || (wantCode == 0 && off != wantOffset) {
			t.Fatalf("%s: error %v offset %d, want %v offset %d", what, kerr.ErrorForCode(code), off, kerr.ErrorForCode(wantCode), wantOffset)
		}
	}
	expect("first", idemBatch(pid, epoch, 0, "a", "b"), 0, 0)
	expect("second", idemBatch(pid, epoch, 2, "c"), 0, 2)
	expect("retry of the first", idemBatch(pid, epoch, 0, "a", "b"), 0, 0)
	expect("retry of the second", idemBatch(pid, epoch, 2, "c"), 0, 2)
	expect("a gap", idemBatch(pid, epoch, 7, "x"), kerr.OutOfOrderSequenceNumber.Code, 0)
	if ends := listEnds(t, cl, "idem"); ends[0] != 3 {
		t.Fatalf("high watermark %d after retries and a gap, want 3", ends[0])
	}

	// KIP-360: the producer asks again with its id and epoch.
	bump := kmsg.NewPtrInitProducerIDRequest()
	bump.TransactionTimeoutMillis, bump.ProducerID, bump.ProducerEpoch = 60000, pid, epoch
	br, err := bump.RequestWith(context.Background(), cl)
	if err != nil || br.ErrorCode != 0 || br.ProducerID != pid || br.ProducerEpoch != epoch+1 {
		t.Fatalf("epoch bump: %+v %v", br, err)
	}
	expect("new epoch from 0", idemBatch(pid, epoch+1, 0, "d"), 0, 3)
	expect("the old epoch", idemBatch(pid, epoch, 3, "zombie"), kerr.InvalidProducerEpoch.Code, 0)

	// What a consumer sees: a, b, c, d, each once.
	consumer := ta.client(t, kgo.ConsumeTopics("idem"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < 4 && ctx.Err() == nil {
		consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != 4 || got[0] != "a" || got[1] != "b" || got[2] != "c" || got[3] != "d" {
		t.Fatalf("consumed %q, want [a b c d]", got)
	}
}

// TestIdempotentFranzGoProducer: franz-go's default (idempotent) producer
// writes through an agent whose commits are the sequence check.
func TestIdempotentFranzGoProducer(t *testing.T) {
	forEachBackend(t, testIdempotentFranzGoProducer)
}

func testIdempotentFranzGoProducer(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t, kgo.DefaultProduceTopic("fg"))
	createTopic(t, cl, "fg", 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 300; i++ {
		cl.Produce(ctx, &kgo.Record{Value: []byte{byte(i)}}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for _, end := range listEnds(t, cl, "fg") {
		total += end
	}
	if total != 300 {
		t.Fatalf("%d records in the topic, want 300", total)
	}
}
