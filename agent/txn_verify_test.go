package agent_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAddPartitionsToTxnVerify: the KIP-890 form of AddPartitionsToTxn
// (v4+): several transactions per request, and VerifyOnly checks that
// partitions are in the ongoing transaction without adding them.
func TestAddPartitionsToTxnVerify(t *testing.T) {
	forEachBackend(t, testAddPartitionsToTxnVerify)
}

func testAddPartitionsToTxnVerify(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	admin := ta.client(t)
	createTopic(t, admin, "verify", 2, nil)
	prod := ta.client(t, kgo.TransactionalID("tv"), kgo.DefaultProduceTopic("verify"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("in txn")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := prod.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	call := func(verify bool, partitions ...int32) map[int32]int16 {
		t.Helper()
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
		tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = "tv", pid, epoch, verify
		rt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		rt.Topic, rt.Partitions = "verify", partitions
		tx.Topics = append(tx.Topics, rt)
		req.Transactions = append(req.Transactions, tx)
		// franz-go clients send at most v3 (v4+ is the broker-side form),
		// so this speaks v4 on a raw connection.
		req.SetVersion(4)
		resp := kmsg.NewPtrAddPartitionsToTxnResponse()
		resp.SetVersion(4)
		rawRequest(t, ta.addr, req, resp)
		if resp.Version < 4 || len(resp.Transactions) != 1 {
			t.Fatalf("answered as v%d with %d transactions; want the v4+ form", resp.Version, len(resp.Transactions))
		}
		out := make(map[int32]int16)
		for _, p := range resp.Transactions[0].Topics[0].Partitions {
			out[p.Partition] = p.ErrorCode
		}
		return out
	}
	if got := call(true, 0, 1); got[0] != 0 || got[1] != kerr.InvalidTxnState.Code {
		t.Fatalf("verify before adding partition 1: %v, want 0 ok and 1 INVALID_TXN_STATE", got)
	}
	if got := call(false, 1); got[1] != 0 {
		t.Fatalf("add partition 1: %v", got)
	}
	if got := call(true, 0, 1); got[0] != 0 || got[1] != 0 {
		t.Fatalf("verify after adding: %v", got)
	}
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if got := call(true, 0); got[0] != kerr.InvalidTxnState.Code {
		t.Fatalf("verify after the commit: %v, want INVALID_TXN_STATE (no transaction ongoing)", got)
	}
}

// rawRequest sends req at its set version on a new connection and decodes
// the answer into resp (whose version must be set to match).
func rawRequest(t *testing.T, addr string, req kmsg.Request, resp kmsg.Response) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	msg := binary.BigEndian.AppendUint32(nil, 0) // size, filled below
	msg = binary.BigEndian.AppendUint16(msg, uint16(req.Key()))
	msg = binary.BigEndian.AppendUint16(msg, uint16(req.GetVersion()))
	msg = binary.BigEndian.AppendUint32(msg, 7) // correlation id
	msg = binary.BigEndian.AppendUint16(msg, 4)
	msg = append(msg, "test"...)
	if req.IsFlexible() {
		msg = append(msg, 0) // no tagged fields
	}
	msg = req.AppendTo(msg)
	binary.BigEndian.PutUint32(msg, uint32(len(msg)-4))
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatalf("read response: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatal(err)
	}
	body = body[4:] // correlation id
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		body = body[1:] // empty tagged fields of the response header (ApiVersions' has none)
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode response: %v", err)
	}
}
