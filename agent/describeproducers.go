package agent

// DescribeProducers, version 0: a partition's producers with an open
// transaction.

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
			ongoing, err := a.store.OngoingTxns(ctx, topic.Partitions[p].TP)
			if err != nil {
				rp.ErrorCode = kerr.KafkaStorageError.Code
			}
			for _, o := range ongoing {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = o.ProducerID, -1, -1
				ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, -1, o.FirstOffset
				if tx, ok, err := a.store.TxnByProducer(ctx, o.ProducerID); err == nil && ok {
					ap.ProducerEpoch = int32(tx.Epoch)
				}
				rp.ActiveProducers = append(rp.ActiveProducers, ap)
			}
			t.Partitions = append(t.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return wire.Respond(resp)
}
