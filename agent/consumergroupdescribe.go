package agent

// ConsumerGroupDescribe, versions 0–1 (KIP-848): answered by the group
// coordinator (package group), each group DESCRIBE-authorized on its own
// (GROUP_AUTHORIZATION_FAILED). Registered only while
// group.coordinator.rebalance.protocols lists consumer.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleConsumerGroupDescribe(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.ConsumerGroupDescribeRequest)
	az := a.access(c)
	allowed := *req
	allowed.Groups = nil
	denied := map[string]bool{}
	for _, g := range req.Groups {
		if az.group(metastore.OpDescribe, g) {
			allowed.Groups = append(allowed.Groups, g)
		} else {
			denied[g] = true
		}
	}
	described := a.groups.ConsumerGroupDescribe(ctx, &allowed)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	i := 0
	for _, g := range req.Groups {
		if denied[g] {
			dg := kmsg.NewConsumerGroupDescribeResponseGroup()
			dg.Group, dg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		resp.Groups = append(resp.Groups, described.Groups[i])
		i++
	}
	return wire.Respond(resp)
}
