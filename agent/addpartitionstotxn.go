package agent

// AddPartitionsToTxn, versions 0–5: v0–3 carry one transaction from its
// producer; v4–5 (KIP-890) carry several, each either adding partitions or,
// with VerifyOnly, only checking that they are already in the ongoing
// transaction. Ids this agent does not coordinate get NOT_COORDINATOR; the
// metastore's compare-and-set is the real fence.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/txn"
	"github.com/siltstream/silt/wire"
)

// handleAddPartitionsToTxn answers AddPartitionsToTxn v0–3 (one
// transaction, from its producer) and v4–5 (KIP-890: several transactions
// in one request, each either adding partitions or, with VerifyOnly, only
// checking that they are already in the ongoing transaction).
func (a *Agent) handleAddPartitionsToTxn(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	az := a.access(c)
	if req.Version < 4 {
		topics := make([]txn.TopicPartitions, 0, len(req.Topics))
		for _, rt := range req.Topics {
			topics = append(topics, txn.TopicPartitions{Topic: rt.Topic, Partitions: rt.Partitions})
		}
		codes, denied := a.authorizeAddPartitions(ctx, az, req.TransactionalID, topics)
		var err error
		if !denied {
			codes, err = a.txns.AddPartitions(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, topics, false)
		}
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
	// v4+ comes from brokers verifying transactions (KIP-890).
	if !az.cluster(metastore.OpClusterAction) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
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

// authorizeAddPartitions is Kafka's check for a client's AddPartitionsToTxn:
// WRITE on the transactional id (else every partition
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and on each topic. If a topic is
// denied or unknown, nothing is added: its partitions answer
// TOPIC_AUTHORIZATION_FAILED or UNKNOWN_TOPIC_OR_PARTITION, the others
// OPERATION_NOT_ATTEMPTED.
func (a *Agent) authorizeAddPartitions(ctx context.Context, az access, id string, topics []txn.TopicPartitions) (map[metastore.TxnPartition]int16, bool) {
	if az.az == nil {
		return nil, false
	}
	codes := make(map[metastore.TxnPartition]int16)
	set := func(t txn.TopicPartitions, code int16) {
		for _, p := range t.Partitions {
			codes[metastore.TxnPartition{Topic: t.Topic, Partition: p}] = code
		}
	}
	if !az.txnID(metastore.OpWrite, id) {
		for _, t := range topics {
			set(t, kerr.TransactionalIDAuthorizationFailed.Code)
		}
		return codes, true
	}
	denied := false
	for _, t := range topics {
		if !az.topic(metastore.OpWrite, t.Topic) {
			set(t, kerr.TopicAuthorizationFailed.Code)
			denied = true
		} else if _, err := a.topics.Get(ctx, t.Topic); err != nil {
			set(t, kerr.UnknownTopicOrPartition.Code)
			denied = true
		} else {
			set(t, kerr.OperationNotAttempted.Code)
		}
	}
	return codes, denied
}
