package wire

import (
	"sync"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/poll"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config.Observe sees every answered request once, with its key, version,
// a duration covering deferred work, and the response.
func TestObserve(t *testing.T) {
	type seen struct {
		key, version int16
		dur          time.Duration
		throttle     int32
	}
	var mu sync.Mutex
	var got []seen
	cfg := Config{Observe: func(key, version int16, dur time.Duration, resp kmsg.Response) {
		hb := resp.(*kmsg.HeartbeatResponse)
		mu.Lock()
		got = append(got, seen{key, version, dur, hb.ThrottleMillis})
		mu.Unlock()
	}}
	_, addr := startServer(t, cfg, newTestRegistry(&testHandlers{}))
	nc := dial(t, addr)
	write(t, nc, append(encodeRequest(heartbeat("delay-30", 7), 3, 1, nil), encodeRequest(heartbeat("", 8), 4, 2, nil)...))
	mustReadResponse(t, nc)
	mustReadResponse(t, nc)
	poll.Until(t, "two observations", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if got[0].key != 12 || got[0].version != 3 || got[0].throttle != 7 || got[0].dur < 30*time.Millisecond {
		t.Errorf("first observation %+v; want Heartbeat v3, generation 7, at least 30ms", got[0])
	}
	if got[1].key != 12 || got[1].version != 4 || got[1].throttle != 8 {
		t.Errorf("second observation %+v; want Heartbeat v4, generation 8", got[1])
	}
}
