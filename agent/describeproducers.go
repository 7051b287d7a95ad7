package agent

// DescribeProducers, version 0: the producers a partition keeps state for,
// as Kafka lists its active producers: idempotent and transactional
// producers whose sequences it checks (last sequence and the time of their
// last write), with the start of their open transaction if any. State of
// producers whose data is all below the log start offset is pruned with it
// (retention, DeleteRecords), and idle state expires after
// producer.id.expiration (a day); an open transaction is kept whatever the
// log start. CoordinatorEpoch is not tracked (-1).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleDescribeProducers(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	az := a.access(c)
	for _, rt := range req.Topics {
		t := kmsg.NewDescribeProducersResponseTopic()
		t.Topic = rt.Topic
		readable := az.topic(metastore.OpRead, rt.Topic)
		topic, terr := a.topics.Get(ctx, rt.Topic)
		for _, p := range rt.Partitions {
			rp := kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition = p
			if !readable {
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				t.Partitions = append(t.Partitions, rp)
				continue
			}
			if terr != nil || p < 0 || int(p) >= len(topic.Partitions) {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				t.Partitions = append(t.Partitions, rp)
				continue
			}
			producers, err := a.store.PartitionProducers(ctx, topic.Partitions[p].TP)
			if err != nil {
				rp.ErrorCode = kerr.KafkaStorageError.Code
			}
			for _, pr := range producers {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = pr.ProducerID, int32(pr.ProducerEpoch), pr.LastSequence
				ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = pr.LastTimestamp, -1, pr.TxnStartOffset
				if pr.ProducerEpoch < 0 && pr.TxnStartOffset >= 0 {
					if tx, ok, err := a.store.TxnByProducer(ctx, pr.ProducerID); err == nil && ok {
						ap.ProducerEpoch = int32(tx.Epoch)
					}
				}
				rp.ActiveProducers = append(rp.ActiveProducers, ap)
			}
			t.Partitions = append(t.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return wire.Respond(resp)
}
