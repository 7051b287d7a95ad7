package agent_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTelemetrySubscriptions: a client asking with no instance id gets
// one, and a subscription to no metrics (do not push; ask again in 5
// minutes) that stays the same when it asks again; pushes are checked as
// Kafka checks them and their metrics dropped.
func TestTelemetrySubscriptions(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, nil)
	get := func(id [16]byte) *kmsg.GetTelemetrySubscriptionsResponse {
		t.Helper()
		req := kmsg.NewPtrGetTelemetrySubscriptionsRequest()
		req.ClientInstanceID = id
		resp := kmsg.NewPtrGetTelemetrySubscriptionsResponse()
		rawRequest(t, ta.addr, req, resp)
		return resp
	}
	first := get([16]byte{})
	if first.ErrorCode != 0 || first.ClientInstanceID == ([16]byte{}) || len(first.RequestedMetrics) != 0 ||
		first.PushIntervalMillis != 300000 || first.TelemetryMaxBytes != 1<<20 || len(first.AcceptedCompressionTypes) == 0 {
		t.Fatalf("first subscription: %+v", first)
	}
	again := get(first.ClientInstanceID)
	if again.ClientInstanceID != first.ClientInstanceID || again.SubscriptionID != first.SubscriptionID {
		t.Fatalf("asked again with its id: %+v, first %+v", again, first)
	}
	if other := get([16]byte{}); other.ClientInstanceID == first.ClientInstanceID {
		t.Fatalf("two clients given instance id %x", other.ClientInstanceID)
	}

	push := func(id [16]byte, sub int32, codec int8, metrics int) int16 {
		t.Helper()
		req := kmsg.NewPtrPushTelemetryRequest()
		req.ClientInstanceID, req.SubscriptionID, req.CompressionType = id, sub, codec
		req.Metrics = make([]byte, metrics)
		resp := kmsg.NewPtrPushTelemetryResponse()
		rawRequest(t, ta.addr, req, resp)
		return resp.ErrorCode
	}
	id, sub := first.ClientInstanceID, first.SubscriptionID
	for _, tc := range []struct {
		what    string
		id      [16]byte
		sub     int32
		codec   int8
		metrics int
		code    int16
	}{
		{"a push on its subscription", id, sub, 4, 100, 0},
		{"another subscription id", id, sub + 1, 0, 100, kerr.UnknownSubscriptionID.Code},
		{"the zero instance id", [16]byte{}, sub, 0, 100, kerr.InvalidRequest.Code},
		{"an unknown codec", id, sub, 9, 100, kerr.UnsupportedCompressionType.Code},
		{"metrics over telemetry.max.bytes", id, sub, 0, 1<<20 + 1, kerr.TelemetryTooLarge.Code},
	} {
		if code := push(tc.id, tc.sub, tc.codec, tc.metrics); code != tc.code {
			t.Errorf("%s: %v, want %v", tc.what, kerr.ErrorForCode(code), kerr.ErrorForCode(tc.code))
		}
	}
}
