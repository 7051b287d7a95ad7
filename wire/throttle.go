package wire

import (
	"context"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Quota throttling, KIP-219. A throttled response carries throttle_time_ms
// (at least the throttle: an earlier, larger value is kept), and the
// connection reads no further request until the throttle has passed, as a
// Kafka broker mutes the channel. At versions where the client backs off
// by itself (kmsg's Throttle reports it: Produce v6+, Fetch v8+, ...) the
// response is sent at once; at older ones it is held back for the
// throttle, which is how those clients were slowed down.

// Throttled returns r throttled for d on c. A reply without a response
// (acks=0) only mutes the connection.
func (r Reply) Throttled(c *Conn, d time.Duration) Reply {
	if d <= 0 {
		return r
	}
	until := time.Now().Add(d)
	c.muteUntil(until)
	switch r.kind {
	case replyNow:
		resp := r.resp
		if setThrottle(resp, d) {
			return r
		}
		return Defer(func(ctx context.Context) kmsg.Response {
			waitUntil(ctx, until)
			return resp
		})
	case replyDeferred:
		wait := r.wait
		if wait == nil {
			return r
		}
		r.wait = func(ctx context.Context) kmsg.Response {
			resp := wait(ctx)
			if resp != nil && !setThrottle(resp, d) {
				waitUntil(ctx, until)
			}
			return resp
		}
	}
	return r
}

// Throttle throttles resp, which a deferred reply is about to return, for
// d on c: it sets throttle_time_ms, mutes the connection, and at versions
// where the client does not back off by itself waits out d first.
func (c *Conn) Throttle(ctx context.Context, resp kmsg.Response, d time.Duration) {
	if d <= 0 {
		return
	}
	until := time.Now().Add(d)
	c.muteUntil(until)
	if !setThrottle(resp, d) {
		waitUntil(ctx, until)
	}
}

// setThrottle raises resp's throttle_time_ms to d and reports whether the
// client applies it itself after the response.
func setThrottle(resp kmsg.Response, d time.Duration) (clientThrottles bool) {
	tr, ok := resp.(kmsg.ThrottleResponse)
	if !ok {
		return false
	}
	cur, after := tr.Throttle()
	ms := int32(min(d.Milliseconds(), math.MaxInt32))
	if s, ok := resp.(kmsg.SetThrottleResponse); ok && ms > cur {
		s.SetThrottle(ms)
	}
	return after
}

func waitUntil(ctx context.Context, until time.Time) {
	d := time.Until(until)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// muteUntil makes the reader read nothing before until (later mutes win).
func (c *Conn) muteUntil(until time.Time) {
	n := until.UnixNano()
	for {
		cur := c.mutedUntil.Load()
		if cur >= n || c.mutedUntil.CompareAndSwap(cur, n) {
			return
		}
	}
}

// waitMuted holds the reader while the connection is muted; false if the
// connection closed or is draining meanwhile.
func (c *Conn) waitMuted() bool {
	until := c.mutedUntil.Load()
	if until == 0 {
		return true
	}
	d := time.Until(time.Unix(0, until))
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.readCtx.Done():
		return false
	}
}
