package agent_test

import (
	"context"
	"testing"

	"github.com/siltstream/silt/metastore"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnOffsetCommitFencesGeneration (issue 11, item 4): KIP-447. A
// consumer that lost its partitions in a rebalance still holds the old
// generation; its transactional offset commit (v3, as franz-go's
// GroupTransactSession and Kafka Streams EOS-v2 send it) is refused
// ILLEGAL_GENERATION and stages nothing, while the current generation's
// commit goes through and lands when the transaction commits.
func TestTxnOffsetCommitFencesGeneration(t *testing.T) {
	forEachBackend(t, testTxnOffsetCommitFencesGeneration)
}

func testTxnOffsetCommitFencesGeneration(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t)
	createTopic(t, cl, "raw", 1, nil)
	ctx := context.Background()

	m := &rawMember{t: t, cl: cl, group: "eos"}
	m.id = m.join(4).MemberID // MEMBER_ID_REQUIRED
	for gen := int32(1); gen <= 2; gen++ {
		// Joining, and the leader rejoining, each start a generation.
		if r := m.join(4); r.ErrorCode != 0 || r.Generation != gen {
			t.Fatalf("join: %v at generation %d, want generation %d", kerr.ErrorForCode(r.ErrorCode), r.Generation, gen)
		}
		if code := m.sync(true); code != 0 {
			t.Fatalf("sync: %v", kerr.ErrorForCode(code))
		}
	}

	init := kmsg.NewPtrInitProducerIDRequest()
	txid := "eos-tx"
	init.TransactionalID, init.TransactionTimeoutMillis = &txid, 60000
	ir, err := init.RequestWith(ctx, cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v, %v", err, kerr.ErrorForCode(ir.ErrorCode))
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txid, ir.ProducerID, ir.ProducerEpoch, "eos"
	if ar, err := add.RequestWith(ctx, cl); err != nil || ar.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v, %v", err, kerr.ErrorForCode(ar.ErrorCode))
	}
	commit := func(gen int32, memberID string, offset int64) int16 {
		t.Helper()
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version = 3
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = txid, ir.ProducerID, ir.ProducerEpoch
		req.Group, req.Generation, req.MemberID = "eos", gen, memberID
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "raw"
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = 0, offset, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := commit(1, m.id, 100); code != kerr.IllegalGeneration.Code {
		t.Errorf("commit at the old generation: %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(code))
	}
	if code := commit(2, "someone-else", 100); code != kerr.UnknownMemberID.Code {
		t.Errorf("commit by an unknown member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
	}
	if code := commit(2, m.id, 7); code != 0 {
		t.Fatalf("commit at the current generation: %v", kerr.ErrorForCode(code))
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = txid, ir.ProducerID, ir.ProducerEpoch, true
	if er, err := end.RequestWith(ctx, cl); err != nil || er.ErrorCode != 0 {
		t.Fatalf("EndTxn: %v, %v", err, kerr.ErrorForCode(er.ErrorCode))
	}
	os, err := ta.store.FetchOffsets(ctx, "eos")
	if err != nil || len(os) != 1 || os[0].Offset != 7 {
		t.Fatalf("committed offsets = %+v, %v; want only the current generation's 7", os, err)
	}
}

// KIP-447: while a transaction holds a staged offset for a partition,
// OffsetFetch with RequireStable answers UNSTABLE_OFFSET_COMMIT (clients
// retry) instead of the older committed offset; without RequireStable, and
// once the transaction ended, the committed offset. (Found by the fault
// test: exactly-once copies duplicated records when a new session read the
// older offset while the last transaction was still ending.)
func TestOffsetFetchRequireStable(t *testing.T) {
	forEachBackend(t, testOffsetFetchRequireStable)
}

func testOffsetFetchRequireStable(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t)
	createTopic(t, cl, "stable", 1, nil)
	ctx := context.Background()
	if err := ta.store.CommitOffsets(ctx, "g", []metastore.CommittedOffset{{Topic: "stable", Partition: 0, Offset: 3}}); err != nil {
		t.Fatal(err)
	}
	fetch := func(requireStable bool) (int16, int64) {
		t.Helper()
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 7
		req.Group, req.RequireStable = "g", requireStable
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = "stable", []int32{0}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		p := resp.Topics[0].Partitions[0]
		return p.ErrorCode, p.Offset
	}
	txid := "stable-tx"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &txid, 60000
	ir, err := init.RequestWith(ctx, cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v, %v", err, kerr.ErrorForCode(ir.ErrorCode))
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txid, ir.ProducerID, ir.ProducerEpoch, "g"
	if ar, err := add.RequestWith(ctx, cl); err != nil || ar.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v, %v", err, kerr.ErrorForCode(ar.ErrorCode))
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = txid, ir.ProducerID, ir.ProducerEpoch, "g"
	req.Generation = -1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "stable"
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch = 0, 9, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if resp, err := req.RequestWith(ctx, cl); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("TxnOffsetCommit: %v %+v", err, resp)
	}
	if code, _ := fetch(true); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("RequireStable with a staged offset: %v, want UNSTABLE_OFFSET_COMMIT", kerr.ErrorForCode(code))
	}
	if code, off := fetch(false); code != 0 || off != 3 {
		t.Fatalf("without RequireStable: %v offset %d, want the committed 3", kerr.ErrorForCode(code), off)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = txid, ir.ProducerID, ir.ProducerEpoch, true
	if er, err := end.RequestWith(ctx, cl); err != nil || er.ErrorCode != 0 {
		t.Fatalf("EndTxn: %v, %v", err, kerr.ErrorForCode(er.ErrorCode))
	}
	if code, off := fetch(true); code != 0 || off != 9 {
		t.Fatalf("RequireStable after the commit: %v offset %d, want 9", kerr.ErrorForCode(code), off)
	}
}
