package agent

// GetTelemetrySubscriptions, version 0 (KIP-714; Java clients ≥ 3.7 ask
// for a subscription at start). PushTelemetry is in pushtelemetry.go.
//
// Silt collects no client metrics: every client gets a subscription to no
// metrics, which KIP-714 defines as "do not push; ask again after the push
// interval" (Kafka's default 5 minutes). A client that asks with the zero
// instance id is given a new random one. The subscription id is computed
// as Kafka computes it — CRC-32C of the metric set and interval, XORed with
// the instance id's hash — so any agent validates a push without shared
// state: a push to another subscription id is UNKNOWN_SUBSCRIPTION_ID, an
// unknown compression type UNSUPPORTED_COMPRESSION_TYPE, metrics over
// telemetry.max.bytes TELEMETRY_TOO_LARGE, a reserved instance id
// INVALID_REQUEST; an acceptable push is answered and its metrics dropped.
// Kafka's per-instance push-rate and terminating checks need state per
// client instance, which stateless agents do not share; they are not made.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

const (
	telemetryPushIntervalMs = 5 * 60 * 1000 // Kafka's client metrics interval.ms default
	telemetryMaxBytes       = 1 << 20       // Kafka's telemetry.max.bytes default
)

// telemetryCompressions are the codecs Kafka accepts for pushed metrics:
// zstd, lz4, gzip, snappy.
var telemetryCompressions = []int8{4, 3, 1, 2}

func (a *Agent) handleGetTelemetrySubscriptions(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.GetTelemetrySubscriptionsRequest)
	resp := req.ResponseKind().(*kmsg.GetTelemetrySubscriptionsResponse)
	id := req.ClientInstanceID
	if id == ([16]byte{}) {
		if _, err := rand.Read(id[:]); err != nil {
			resp.ErrorCode = kerr.UnknownServerError.Code
			return wire.Respond(resp)
		}
		id[6] = id[6]&0x0f | 0x40 // UUID version 4
		id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	}
	resp.ClientInstanceID = id
	resp.SubscriptionID = telemetrySubscriptionID(id)
	resp.AcceptedCompressionTypes = telemetryCompressions
	resp.PushIntervalMillis = telemetryPushIntervalMs
	resp.TelemetryMaxBytes = telemetryMaxBytes
	resp.DeltaTemporality = true
	resp.RequestedMetrics = []string{}
	return wire.Respond(resp)
}

// telemetrySubscriptionID is Kafka's ClientMetricsManager.computeSubscriptionId
// for the empty subscription: CRC-32C of the metric set as Java prints it
// and the push interval, XORed with the instance id's Java hashCode.
func telemetrySubscriptionID(id [16]byte) int32 {
	h := binary.BigEndian.Uint64(id[:8]) ^ binary.BigEndian.Uint64(id[8:])
	return int32(emptySubscriptionCRC) ^ int32(uint32(h>>32)^uint32(h))
}

var emptySubscriptionCRC = crc32.Checksum(fmt.Appendf(nil, "[]%d", telemetryPushIntervalMs), crc32.MakeTable(crc32.Castagnoli))
