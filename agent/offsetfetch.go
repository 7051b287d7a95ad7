package agent

// OffsetFetch, versions 0–9: one group, or several per request from
// v8; answered by the group coordinator (package group).
//
// RequireStable (v7+, KIP-447): a partition whose offset is staged in a
// transaction that has not ended yet answers UNSTABLE_OFFSET_COMMIT, which
// clients retry, instead of the offset committed before that transaction.
// Exactly-once consumers (GroupTransactSession, Kafka Streams) rely on it:
// a new owner that read the older offset would process again what the
// ending transaction is about to commit.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleOffsetFetch(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	return wire.Respond(authorizeOffsetFetch(a.access(c), kreq.(*kmsg.OffsetFetchRequest), func(req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
		resp := a.groups.OffsetFetch(ctx, req)
		if req.RequireStable {
			a.markUnstableOffsets(ctx, req, resp)
		}
		return resp
	}))
}

// stagedKey is one partition of one group with an offset staged in an
// open transaction.
type stagedKey struct {
	group, topic string
	partition    int32
}

// markUnstableOffsets answers UNSTABLE_OFFSET_COMMIT for every partition
// of resp whose group has an offset staged in an open transaction. If the
// transactions cannot be read, every partition is unstable (retriable),
// never an offset that may be about to change.
func (a *Agent) markUnstableOffsets(ctx context.Context, req *kmsg.OffsetFetchRequest, resp *kmsg.OffsetFetchResponse) {
	txns, err := a.store.Txns(ctx)
	staged := make(map[stagedKey]bool)
	for _, t := range txns {
		switch t.State {
		case metastore.TxnOngoing, metastore.TxnPrepareCommit, metastore.TxnPrepareAbort:
			for _, o := range t.Offsets {
				staged[stagedKey{o.Group, o.Topic, o.Partition}] = true
			}
		}
	}
	unstable := func(group, topic string, p int32) bool {
		return err != nil || staged[stagedKey{group, topic, p}]
	}
	for i := range resp.Topics { // v0–7: the request's one group
		t := &resp.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.ErrorCode == 0 && unstable(req.Group, t.Topic, p.Partition) {
				p.ErrorCode, p.Offset = kerr.UnstableOffsetCommit.Code, -1
			}
		}
	}
	for g := range resp.Groups { // v8+
		grp := &resp.Groups[g]
		for i := range grp.Topics {
			t := &grp.Topics[i]
			for j := range t.Partitions {
				p := &t.Partitions[j]
				if p.ErrorCode == 0 && unstable(grp.Group, t.Topic, p.Partition) {
					p.ErrorCode, p.Offset = kerr.UnstableOffsetCommit.Code, -1
				}
			}
		}
	}
}
