package agent

// PushTelemetry, version 0 (KIP-714). Silt subscribes clients to no
// metrics (gettelemetrysubscriptions.go), so a push is only checked as
// Kafka checks one and its metrics dropped.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

func (a *Agent) handlePushTelemetry(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.PushTelemetryRequest)
	resp := req.ResponseKind().(*kmsg.PushTelemetryResponse)
	switch id := req.ClientInstanceID; {
	case id == [16]byte{} || id == [16]byte{15: 1}: // Kafka's reserved ids
		resp.ErrorCode = kerr.InvalidRequest.Code
	case req.SubscriptionID != telemetrySubscriptionID(id):
		resp.ErrorCode = kerr.UnknownSubscriptionID.Code
	case req.CompressionType < 0 || req.CompressionType > 4:
		resp.ErrorCode = kerr.UnsupportedCompressionType.Code
	case len(req.Metrics) > telemetryMaxBytes:
		resp.ErrorCode = kerr.TelemetryTooLarge.Code
	}
	return wire.Respond(resp)
}
