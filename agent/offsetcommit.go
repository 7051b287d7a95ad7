package agent

// OffsetCommit, versions 0–9: fenced by the group's generation, in
// the coordinator's memory and again in the store (package group).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleOffsetCommit(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	return wire.Respond(authorizeOffsetCommit(a.access(c), kreq.(*kmsg.OffsetCommitRequest), func(req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
		return a.groups.OffsetCommit(ctx, req)
	}))
}
