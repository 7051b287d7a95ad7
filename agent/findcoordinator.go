package agent

// FindCoordinator, versions 0–6 (batched keys from v4). Group and
// transaction coordinators are both placed by coordinatorFor.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/cluster"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleFindCoordinator(_ context.Context, conn *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	az := a.access(conn)
	find := func(key string) (b cluster.Broker, code int16, msg string) {
		switch req.CoordinatorType {
		case 0:
			if !az.group(metastore.OpDescribe, key) {
				return b, kerr.GroupAuthorizationFailed.Code, kerr.GroupAuthorizationFailed.Message
			}
			if key == "" {
				return b, kerr.InvalidGroupID.Code, "group id must not be empty"
			}
			return a.coordinatorFor(key), 0, ""
		case 1:
			if !az.txnID(metastore.OpDescribe, key) {
				return b, kerr.TransactionalIDAuthorizationFailed.Code, kerr.TransactionalIDAuthorizationFailed.Message
			}
			if key == "" {
				return b, kerr.InvalidRequest.Code, "transactional id must not be empty"
			}
			return a.coordinatorFor(key), 0, ""
		default:
			return b, kerr.InvalidRequest.Code, "unknown coordinator type"
		}
	}
	if req.Version < 4 {
		b, code, msg := find(req.CoordinatorKey)
		resp.ErrorCode, resp.NodeID, resp.Host, resp.Port = code, -1, "", -1
		if code == 0 {
			resp.NodeID, resp.Host, resp.Port = b.NodeID, b.Host, b.Port
		} else if req.Version >= 1 {
			resp.ErrorMessage = &msg
		}
		return wire.Respond(resp)
	}
	for _, key := range req.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Port = key, -1, -1
		b, code, msg := find(key)
		c.ErrorCode = code
		if code == 0 {
			c.NodeID, c.Host, c.Port = b.NodeID, b.Host, b.Port
		} else {
			c.ErrorMessage = &msg
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return wire.Respond(resp)
}
