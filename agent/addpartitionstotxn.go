package agent

// AddPartitionsToTxn, versions 0–5: v0–3 carry one transaction from its
// producer; v4–5 (KIP-890) carry several, each either adding partitions or,
// with VerifyOnly, only checking that they are already in the ongoing
// transaction. Ids this agent does not coordinate get NOT_COORDINATOR; the
// metastore's compare-and-set is the real fence.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/txn"
	"github.com/siltstream/silt/wire"
)

// handleAddPartitionsToTxn answers AddPartitionsToTxn v0–3 (one
// transaction, from its producer) and v4–5 (KIP-890: several transactions
// in one request, each either adding partitions or, with VerifyOnly, only
// checking that they are already in the ongoing transaction).
func (a *Agent) handleAddPartitionsToTxn(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version < 4 {
		topics := make([]txn.TopicPartitions, 0, len(req.Topics))
		for _, rt := range req.Topics {
			topics = append(topics, txn.TopicPartitions{Topic: rt.Topic, Partitions: rt.Partitions})
		}
		codes, err := a.txns.AddPartitions(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, topics, false)
		for _, rt := range req.Topics {
			t := kmsg.NewAddPartitionsToTxnResponseTopic()
			t.Topic = rt.Topic
			for _, p := range rt.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition = p
				rp.ErrorCode = partitionCode(codes, err, rt.Topic, p)
				t.Partitions = append(t.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return wire.Respond(resp)
	}
	for _, tx := range req.Transactions {
		topics := make([]txn.TopicPartitions, 0, len(tx.Topics))
		for _, rt := range tx.Topics {
			topics = append(topics, txn.TopicPartitions{Topic: rt.Topic, Partitions: rt.Partitions})
		}
		codes, err := a.txns.AddPartitions(ctx, tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, topics, tx.VerifyOnly)
		st := kmsg.NewAddPartitionsToTxnResponseTransaction()
		st.TransactionalID = tx.TransactionalID
		for _, rt := range tx.Topics {
			t := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			t.Topic = rt.Topic
			for _, p := range rt.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition = p
				rp.ErrorCode = partitionCode(codes, err, rt.Topic, p)
				t.Partitions = append(t.Partitions, rp)
			}
			st.Topics = append(st.Topics, t)
		}
		resp.Transactions = append(resp.Transactions, st)
	}
	return wire.Respond(resp)
}

func partitionCode(codes map[metastore.TxnPartition]int16, err error, topic string, p int32) int16 {
	if err != nil {
		return codeOf(err)
	}
	return codes[metastore.TxnPartition{Topic: topic, Partition: p}]
}
