package wire

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A throttled reply carries throttle_time_ms and mutes the connection: the
// next request is not handled before the throttle has passed (timers never
// fire early, so the lower bound is safe to assert). At a version where
// the client does not back off itself (Heartbeat v1) the response is held
// back instead, and still reports the throttle.
func TestThrottledReply(t *testing.T) {
	const throttle = 80 * time.Millisecond
	var mu sync.Mutex
	var handled []time.Time
	reg := NewRegistry()
	reg.Register(int16(kmsg.Heartbeat), 0, 4, func(ctx context.Context, c *Conn, req kmsg.Request) Reply {
		mu.Lock()
		handled = append(handled, time.Now())
		mu.Unlock()
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		if req.(*kmsg.HeartbeatRequest).Group == "slow" {
			return Respond(resp).Throttled(c, throttle)
		}
		return Respond(resp)
	})
	_, addr := startServer(t, Config{}, reg)

	for _, version := range []int16{4, 1} {
		mu.Lock()
		handled = nil
		mu.Unlock()
		nc := dial(t, addr)
		write(t, nc, append(encodeRequest(heartbeat("slow", 1), version, 1, nil), encodeRequest(heartbeat("fast", 2), version, 2, nil)...))
		for corr := int32(1); corr <= 2; corr++ {
			got, body := mustReadResponse(t, nc)
			if version >= 4 {
				body = body[1:] // the flexible response header's tags
			}
			resp := kmsg.NewPtrHeartbeatResponse()
			resp.SetVersion(version)
			if err := resp.ReadFrom(body); err != nil || got != corr {
				t.Fatalf("v%d: response %d: %v (correlation id %d)", version, corr, err, got)
			}
			want := int32(0)
			if corr == 1 {
				want = int32(throttle / time.Millisecond)
			}
			if resp.ThrottleMillis != want {
				t.Errorf("v%d: response %d throttle_time_ms = %d; want %d", version, corr, resp.ThrottleMillis, want)
			}
		}
		mu.Lock()
		if len(handled) != 2 || handled[1].Sub(handled[0]) < throttle {
			t.Errorf("v%d: the second request was handled %v after the throttled one; want at least %v", version, handled[1].Sub(handled[0]), throttle)
		}
		mu.Unlock()
		nc.Close()
	}
}

// A connection Config.ThrottleConnection throttles is closed unanswered;
// the others are served; a held connection does not hold up Close.
func TestThrottledConnection(t *testing.T) {
	var n atomic.Int32
	cfg := Config{ThrottleConnection: func(ip netip.Addr) time.Duration {
		if !ip.IsLoopback() {
			t.Errorf("ThrottleConnection asked for %v", ip)
		}
		if n.Add(1) == 2 {
			return time.Hour
		}
		return 0
	}}
	srv, addr := startServer(t, cfg, newTestRegistry(&testHandlers{}))
	first := dial(t, addr)
	write(t, first, encodeRequest(heartbeat("", 1), 4, 1, nil))
	mustReadResponse(t, first)
	second := dial(t, addr)
	write(t, second, encodeRequest(heartbeat("", 1), 4, 1, nil))
	third := dial(t, addr)
	write(t, third, encodeRequest(heartbeat("", 1), 4, 1, nil))
	mustReadResponse(t, third)
	srv.Close() // does not wait the hour
	if _, _, err := readResponse(second); err == nil {
		t.Fatal("the throttled connection was answered")
	}
}
