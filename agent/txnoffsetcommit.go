package agent

// TxnOffsetCommit, versions 0–3: stages offsets in the producer's
// transaction; EndTxn applies them to the group when the transaction
// commits. The group's coordinator takes it and fences the committer
// (v3+: generation, member id, group.instance.id; group.TxnOffsetCommit);
// the transaction's compare-and-set decides the rest.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/group"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleTxnOffsetCommit(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.TxnOffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	// Kafka: WRITE on the transactional id, READ on the group, READ on each
	// topic; denied topics answer TOPIC_AUTHORIZATION_FAILED and the rest
	// is committed.
	az := a.access(c)
	var denied []kmsg.TxnOffsetCommitRequestTopic
	switch {
	case !az.txnID(metastore.OpWrite, req.TransactionalID):
		return wire.Respond(txnOffsetCommitError(req, kerr.TransactionalIDAuthorizationFailed.Code))
	case !az.group(metastore.OpRead, req.Group):
		return wire.Respond(txnOffsetCommitError(req, kerr.GroupAuthorizationFailed.Code))
	case az.az != nil:
		r := *req
		r.Topics = nil
		for _, rt := range req.Topics {
			if az.topic(metastore.OpRead, rt.Topic) {
				r.Topics = append(r.Topics, rt)
			} else {
				denied = append(denied, rt)
			}
		}
		if len(denied) > 0 && len(r.Topics) == 0 {
			return wire.Respond(txnOffsetCommitError(req, kerr.TopicAuthorizationFailed.Code))
		}
		req = &r
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
	resp.Topics = append(resp.Topics, txnOffsetCommitError(&kmsg.TxnOffsetCommitRequest{Topics: denied}, kerr.TopicAuthorizationFailed.Code).Topics...)
	return wire.Respond(resp)
}

// txnOffsetCommitError answers every partition of req with code.
func txnOffsetCommitError(req *kmsg.TxnOffsetCommitRequest, code int16) *kmsg.TxnOffsetCommitResponse {
	resp := kmsg.NewPtrTxnOffsetCommitResponse()
	resp.Version = req.Version
	for _, rt := range req.Topics {
		t := kmsg.NewTxnOffsetCommitResponseTopic()
		t.Topic = rt.Topic
		for _, p := range rt.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			t.Partitions = append(t.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}
