package agent

// TxnOffsetCommit, versions 0–4 (v4: the client knows TRANSACTION_ABORTABLE):
// stages offsets in the producer's
// transaction; EndTxn applies them to the group when the transaction
// commits. The group's coordinator takes it and fences the committer
// (v3+: generation, member id, group.instance.id; group.TxnOffsetCommit);
// the transaction's compare-and-set decides the rest.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/group"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleTxnOffsetCommit(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.TxnOffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	req, denied := authorizeTxnOffsetCommit(a.access(c), req)
	if req == nil {
		return wire.Respond(denied)
	}
	var offsets []metastore.CommittedOffset
	for _, rt := range req.Topics {
		for _, p := range rt.Partitions {
			o := metastore.CommittedOffset{Topic: rt.Topic, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch}
			if p.Metadata != nil {
				o.Metadata = *p.Metadata
			}
			offsets = append(offsets, o)
		}
	}
	who := group.TxnCommitter{Generation: -1}
	if req.Version >= 3 {
		who = group.TxnCommitter{Generation: req.Generation, MemberID: req.MemberID, InstanceID: req.InstanceID}
	}
	err := a.groups.TxnOffsetCommit(ctx, req.Group, who, func(ctx context.Context) error {
		return a.txns.CommitOffsets(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, offsets)
	})
	for _, rt := range req.Topics {
		t := kmsg.NewTxnOffsetCommitResponseTopic()
		t.Topic = rt.Topic
		for _, p := range rt.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codeOf(err)
			t.Partitions = append(t.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, t)
	}
	if denied != nil {
		resp.Topics = append(resp.Topics, denied.Topics...)
	}
	return wire.Respond(resp)
}
