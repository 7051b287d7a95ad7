package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnBatch encodes a v2 batch from a transactional producer.
func txnBatch(pid int64, epoch int16, seq int32, value string) []byte {
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: 0x0010, // transactional
		FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(),
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq, NumRecords: 1,
	}
	r := kmsg.Record{Value: []byte(value)}
	r.Length = int32(len(r.AppendTo(nil)) - 1)
	rb.Records = r.AppendTo(nil)
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	raw := rb.AppendTo(nil)
	rb.CRC = int32(crc32c(raw[21:]))
	return rb.AppendTo(nil)
}

// Produce checks WRITE on the transactional id only when the request
// carries transactional batches, as Kafka does; transactional batches
// without a transactional id are refused outright.
func TestProduceTransactionalIDCheck(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, withACLs(nil))
	admin := ta.as(t, "admin")
	alice := ta.as(t, "alice")
	createTopic(t, admin, "p-topic", 1, nil)
	createACLs(t, admin, allow(rtTopic, "p-topic", "alice", kmsg.ACLOperationWrite))

	produce := func(txnID *string, records []byte) int16 {
		req := produceRequest("p-topic", 0, records)
		req.TransactionID = txnID
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	wantCode(t, "plain batch from a client that names a transactional id it may not write",
		produce(kmsg.StringPtr("tx9"), batch("plain")), nil)
	wantCode(t, "transactional batch without a transactional id",
		produce(nil, txnBatch(7, 0, 0, "t")), kerr.TransactionalIDAuthorizationFailed)
	wantCode(t, "transactional batch without WRITE on the transactional id",
		produce(kmsg.StringPtr("tx9"), txnBatch(7, 0, 0, "t")), kerr.TransactionalIDAuthorizationFailed)
}
