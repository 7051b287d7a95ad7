package agent

// ShareAcknowledge, versions 1–2 (KIP-932): acknowledgements outside a
// fetch, in the member's share session (sharesession.go). Epoch 0 is
// INVALID_SHARE_SESSION_EPOCH (a session is opened by ShareFetch), -1
// applies the acknowledgements and closes the session, releasing every
// record the member still holds in the group; otherwise the epoch must be
// the session's next. Each partition answers INVALID_RECORD_STATE for
// records the member does not hold. READ on the group and on each topic
// is required.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleShareAcknowledge(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.ShareAcknowledgeRequest)
	resp := req.ResponseKind().(*kmsg.ShareAcknowledgeResponse)
	fail := func(code int16, msg string) wire.Reply {
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		return wire.Respond(resp)
	}
	key, az, ss, code, msg := a.shareRequest(ctx, c, req.GroupID, req.MemberID)
	if code != 0 {
		return fail(code, msg)
	}
	resp.AcquisitionLockTimeoutMillis = int32(ss.lock / time.Millisecond)
	switch {
	case req.ShareSessionEpoch == -1:
		code = a.shareSessions.close(key)
	case req.ShareSessionEpoch <= 0:
		code = kerr.InvalidShareSessionEpoch.Code
	default:
		_, code = a.shareSessions.next(key, req.ShareSessionEpoch, nil, nil)
	}
	if code != 0 {
		return fail(code, "")
	}
	for _, rt := range req.Topics {
		st := kmsg.NewShareAcknowledgeResponseTopic()
		st.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewShareAcknowledgeResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = -1, -1
			batches := make([]metastore.ShareAckBatch, 0, len(rp.AcknowledgementBatches))
			for _, b := range rp.AcknowledgementBatches {
				batches = append(batches, metastore.ShareAckBatch{First: b.FirstOffset, Last: b.LastOffset, Types: b.AcknowledgeTypes})
			}
			code, msg := a.acknowledgeShare(ctx, az, key, ss, rt.TopicID, rp.Partition, batches)
			sp.ErrorCode = code
			if msg != "" {
				sp.ErrorMessage = &msg
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.ShareSessionEpoch == -1 {
		a.releaseShareMember(ctx, key, ss)
	}
	return wire.Respond(resp)
}
