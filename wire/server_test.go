package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/poll"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestFrameErrorsCloseConnection(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxRequestBytes = 1 << 10
	s, addr := startServer(t, cfg, newTestRegistry(&testHandlers{}))

	size := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	metadata := encodeRequest(kmsg.NewPtrMetadataRequest(), 12, 1, strp("c"))
	cases := []struct {
		name  string
		input []byte
		eof   bool // half-close after writing
	}{
		{name: "oversized", input: size(1<<10 + 1)},
		{name: "claims 2 GiB", input: size(1<<31 - 1)},
		{name: "negative size", input: size(0xffffffff)},
		{name: "shorter than a header", input: append(size(4), 0, 3, 0, 0)},
		{name: "truncated frame then EOF", input: metadata[:len(metadata)-3], eof: true},
		{name: "truncated size then EOF", input: []byte{0, 0}, eof: true},
		{name: "unknown key", input: encodeUnknownKey(1000)},
		{name: "kmsg key without handler", input: encodeRequest(kmsg.NewPtrLeaderAndISRRequest(), 0, 1, nil)},
		{name: "version above range", input: encodeRequest(kmsg.NewPtrMetadataRequest(), 13, 1, nil)},
		{name: "version below range", input: encodeRequest(kmsg.NewPtrProduceRequest(), 2, 1, nil)},
		{name: "negative version", input: encodeRequest(kmsg.NewPtrMetadataRequest(), -1, 1, nil)},
		{name: "undecodable body", input: corruptLastBytes(encodeRequest(kmsg.NewPtrCreateTopicsRequest(), 4, 1, nil))},
		{name: "bad client id length", input: badClientID()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc := dial(t, addr)
			write(t, nc, tc.input)
			if tc.eof {
				_ = nc.CloseWrite()
			}
			expectClosed(t, nc)
		})
	}
	poll.Until(t, "connections to close", func() bool { return s.ConnCount() == 0 })

	// The server still serves.
	nc := dial(t, addr)
	write(t, nc, metadata)
	if corr, _ := mustReadResponse(t, nc); corr != 1 {
		t.Fatalf("correlation id %d, want 1", corr)
	}
}

func encodeUnknownKey(key int16) []byte {
	b := encodeRequest(kmsg.NewPtrMetadataRequest(), 0, 1, nil)
	binary.BigEndian.PutUint16(b[4:], uint16(key))
	return b
}

// corruptLastBytes makes the body's last array claim far more elements than
// the frame holds.
func corruptLastBytes(b []byte) []byte {
	b = append(b, 0x7f, 0xff, 0xff, 0xff)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	// CreateTopics v4 ends with validate_only; the topics array length is
	// right after the header: make it huge.
	binary.BigEndian.PutUint32(b[4+10:], 0x7fffffff)
	return b
}

func badClientID() []byte {
	b := encodeRequest(kmsg.NewPtrMetadataRequest(), 1, 1, strp("abc"))
	binary.BigEndian.PutUint16(b[4+8:], 500)
	return b
}

func TestApiVersionsUnsupportedVersion(t *testing.T) {
	_, addr := startServer(t, Config{}, newTestRegistry(&testHandlers{}))
	for _, v := range []int16{5, 127, -1} {
		nc := dial(t, addr)
		write(t, nc, encodeRequest(kmsg.NewPtrApiVersionsRequest(), v, 77, strp("x")))
		corr, body := mustReadResponse(t, nc)
		if corr != 77 {
			t.Fatalf("v%d: correlation id %d, want 77", v, corr)
		}
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 0
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("v%d: decode v0 response: %v", v, err)
		}
		if resp.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("v%d: error code %d, want %d", v, resp.ErrorCode, kerr.UnsupportedVersion.Code)
		}
		want := []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MinVersion: 0, MaxVersion: 4}}
		if !sameKeys(resp.ApiKeys, want) {
			t.Fatalf("v%d: ApiKeys %+v, want %+v", v, resp.ApiKeys, want)
		}
		// The connection stays usable: retry with a version we speak.
		write(t, nc, encodeRequest(kmsg.NewPtrApiVersionsRequest(), 4, 78, nil))
		if corr, _ := mustReadResponse(t, nc); corr != 78 {
			t.Fatalf("retry: correlation id %d, want 78", corr)
		}
	}
}

func TestApiVersionsMatchesRegistry(t *testing.T) {
	reg := newTestRegistry(&testHandlers{})
	_, addr := startServer(t, Config{}, reg)
	versions := reg.Versions()
	for i, k := range versions {
		if i > 0 && versions[i-1].ApiKey >= k.ApiKey {
			t.Fatalf("Versions not sorted by key: %+v", versions)
		}
		e, ok := reg.lookup(k.ApiKey)
		if !ok || (e.handler == nil) != (k.ApiKey == apiVersionsKey) {
			t.Errorf("key %d (%s) is advertised without a handler", k.ApiKey, kmsg.NameForKey(k.ApiKey))
		}
	}
	if !slices.ContainsFunc(versions, func(k kmsg.ApiVersionsResponseApiKey) bool {
		return k.ApiKey == 18 && k.MinVersion == 0 && k.MaxVersion == 4
	}) {
		t.Fatalf("Versions lacks ApiVersions 0-4: %+v", versions)
	}

	nc := dial(t, addr)
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName, req.ClientSoftwareVersion = "raw-test", "1.0"
		write(t, nc, encodeRequest(req, v, int32(v), nil))
		corr, body := mustReadResponse(t, nc)
		if corr != int32(v) {
			t.Fatalf("v%d: correlation id %d", v, corr)
		}
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = v
		// Response header v0 always: the body starts right after the
		// correlation id, even for flexible versions.
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("v%d: decode: %v", v, err)
		}
		if resp.ErrorCode != 0 || !sameKeys(resp.ApiKeys, versions) {
			t.Fatalf("v%d: error %d, ApiKeys %+v, want %+v", v, resp.ErrorCode, resp.ApiKeys, versions)
		}
		if v >= 3 {
			// No tagged-field byte: error code, then the compact array.
			if body[0] != 0 || body[1] != 0 || body[2] != byte(len(versions)+1) {
				t.Fatalf("v%d: body starts % x, want a v0 response header", v, body[:3])
			}
		}
	}
}

func TestFlexibleResponseHeader(t *testing.T) {
	_, addr := startServer(t, Config{}, newTestRegistry(&testHandlers{}))
	nc := dial(t, addr)
	for v := int16(0); v <= 12; v++ {
		write(t, nc, encodeRequest(kmsg.NewPtrMetadataRequest(), v, 100+int32(v), strp("hdr")))
		corr, body := mustReadResponse(t, nc)
		if corr != 100+int32(v) {
			t.Fatalf("v%d: correlation id %d", v, corr)
		}
		if v >= 9 {
			if body[0] != 0 {
				t.Fatalf("v%d: flexible response lacks the empty tagged-field byte: % x", v, body[:4])
			}
			body = body[1:]
		}
		resp := kmsg.NewPtrMetadataResponse()
		resp.Version = v
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("v%d: decode: %v", v, err)
		}
		if len(resp.Brokers) != 1 || resp.Brokers[0].Host != "127.0.0.1" {
			t.Fatalf("v%d: brokers %+v", v, resp.Brokers)
		}
	}
}

func TestPipeliningKeepsRequestOrder(t *testing.T) {
	h := &testHandlers{}
	_, addr := startServer(t, Config{}, newTestRegistry(h))
	nc := dial(t, addr)

	delays := []string{"delay-80", "delay-5", "", "delay-40", "delay-0", "delay-60", "", "delay-20", "delay-1", ""}
	var batch []byte
	for i, d := range delays {
		batch = append(batch, encodeRequest(heartbeat(d, int32(i)), 3, 1000+int32(i), nil)...)
	}
	write(t, nc, batch) // all at once
	for i := range delays {
		corr, body := mustReadResponse(t, nc)
		resp := kmsg.NewPtrHeartbeatResponse()
		resp.Version = 3
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("decode response %d: %v", i, err)
		}
		if corr != 1000+int32(i) || resp.ThrottleMillis != int32(i) {
			t.Fatalf("response %d: correlation id %d, generation echo %d", i, corr, resp.ThrottleMillis)
		}
	}
	if got := h.handled.Load(); got != int32(len(delays)) {
		t.Fatalf("handled %d requests, want %d", got, len(delays))
	}
}

func TestMaxInflightBoundsReading(t *testing.T) {
	h := &testHandlers{release: make(chan struct{})}
	_, addr := startServer(t, Config{MaxInflight: 2}, newTestRegistry(h))
	nc := dial(t, addr)
	var batch []byte
	for i := range 4 {
		batch = append(batch, encodeRequest(heartbeat("block", int32(i)), 4, int32(i), nil)...)
	}
	write(t, nc, batch)
	poll.Until(t, "two requests handled", func() bool { return h.handled.Load() == 2 })
	time.Sleep(50 * time.Millisecond) // give a wrongly unbounded reader the chance to read more
	if got := h.handled.Load(); got != 2 {
		t.Fatalf("handled %d requests with MaxInflight 2 and none answered", got)
	}
	close(h.release)
	for i := range 4 {
		if corr, _ := mustReadResponse(t, nc); corr != int32(i) {
			t.Fatalf("response %d has correlation id %d", i, corr)
		}
	}
}

func TestNoResponseAndCloseConn(t *testing.T) {
	_, addr := startServer(t, Config{}, newTestRegistry(&testHandlers{}))

	t.Run("acks=0 gets no response", func(t *testing.T) {
		nc := dial(t, addr)
		p := kmsg.NewPtrProduceRequest()
		p.Acks = 0
		write(t, nc, encodeRequest(p, 9, 1, nil))
		p1 := kmsg.NewPtrProduceRequest()
		p1.Acks = 1
		write(t, nc, encodeRequest(p1, 9, 2, nil))
		if corr, _ := mustReadResponse(t, nc); corr != 2 {
			t.Fatalf("first response has correlation id %d, want 2", corr)
		}
	})
	t.Run("CloseConn after earlier replies", func(t *testing.T) {
		nc := dial(t, addr)
		var b []byte
		b = append(b, encodeRequest(heartbeat("delay-30", 0), 4, 1, nil)...)
		b = append(b, encodeRequest(heartbeat("close", 1), 4, 2, nil)...)
		b = append(b, encodeRequest(heartbeat("", 2), 4, 3, nil)...)
		write(t, nc, b)
		if corr, _ := mustReadResponse(t, nc); corr != 1 {
			t.Fatalf("correlation id %d, want 1", corr)
		}
		expectClosed(t, nc)
	})
	t.Run("zero Reply closes", func(t *testing.T) {
		nc := dial(t, addr)
		write(t, nc, encodeRequest(heartbeat("zero", 0), 4, 1, nil))
		expectClosed(t, nc)
	})
}

func TestHandlerPanicClosesOnlyThatConnection(t *testing.T) {
	s, addr := startServer(t, Config{}, newTestRegistry(&testHandlers{}))
	other := dial(t, addr)
	write(t, other, encodeRequest(kmsg.NewPtrApiVersionsRequest(), 3, 1, nil))
	mustReadResponse(t, other)

	nc := dial(t, addr)
	write(t, nc, encodeRequest(heartbeat("", 0), 4, 1, nil))
	write(t, nc, encodeRequest(kmsg.NewPtrSyncGroupRequest(), 5, 2, nil))
	if corr, _ := mustReadResponse(t, nc); corr != 1 {
		t.Fatalf("correlation id %d, want 1", corr)
	}
	expectClosed(t, nc)

	write(t, other, encodeRequest(kmsg.NewPtrMetadataRequest(), 12, 2, nil))
	if corr, _ := mustReadResponse(t, other); corr != 2 {
		t.Fatalf("other connection: correlation id %d, want 2", corr)
	}
	poll.Until(t, "one connection left", func() bool { return s.ConnCount() == 1 })
}

func TestIdleTimeout(t *testing.T) {
	const idleTimeout = 100 * time.Millisecond
	h := &testHandlers{release: make(chan struct{})}
	_, addr := startServer(t, Config{IdleTimeout: idleTimeout}, newTestRegistry(h))

	// A connection waiting on a deferred reply is not idle: hold its request
	// in the handler until another connection has been closed as idle.
	busy, reply := sendHeld(t, addr, h)

	// The clock starts before Dial: the server arms its idle deadline after
	// accepting, which cannot precede the start of Dial, so this lower bound
	// holds however late either goroutine runs. Starting it after Dial does
	// not (the server may have been counting already).
	start := time.Now()
	idle := dial(t, addr)
	expectClosed(t, idle) // fails after 10 s if idle connections are kept
	if d := time.Since(start); d < idleTimeout {
		t.Fatalf("idle connection closed %s after dialing, before the %s idle timeout", d, idleTimeout)
	}

	// busy's request has now been in flight for longer than the idle
	// timeout. The server must still be reading it, not just finishing its
	// last reply: a request sent now is answered, after the held one.
	write(t, busy, encodeRequest(heartbeat("", 0), 4, 2, nil))
	close(h.release)
	if r := <-reply; r.err != nil || r.corr != 1 {
		t.Fatalf("held request: correlation id %d, err %v; want 1 and the connection kept open", r.corr, r.err)
	}
	if corr, _, err := readResponse(busy); err != nil || corr != 2 {
		t.Fatalf("request sent while one was held: correlation id %d, err %v; want 2", corr, err)
	}
	// With nothing in flight any more, busy is idle and is closed in turn.
	expectClosed(t, busy)
}

type response struct {
	corr int32
	err  error
}

// sendHeld dials addr and sends a Heartbeat "block" request, which h holds
// until h.release is closed, and returns once the handler holds it, with a
// channel that yields the response. The server may rightly close a
// connection that sends nothing for the idle timeout after accept, which a
// test goroutine stalled between Dial and Write on a busy machine can
// cause; then it dials again.
func sendHeld(t *testing.T, addr string, h *testHandlers) (*net.TCPConn, <-chan response) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		handled := h.handled.Load()
		nc := dial(t, addr)
		write(t, nc, encodeRequest(heartbeat("block", 0), 4, 1, nil))
		reply := make(chan response, 1)
		go func() {
			corr, _, err := readResponse(nc)
			reply <- response{corr, err}
		}()
		poll.Until(t, "held request or closed connection", func() bool {
			return h.handled.Load() > handled || len(reply) > 0
		})
		if h.handled.Load() > handled {
			return nc, reply
		}
		r := <-reply
		t.Logf("attempt %d: connection closed before its request was handled (corr %d, err %v)", attempt, r.corr, r.err)
		if attempt == 5 {
			t.Fatal("the server closed every connection before reading its first request")
		}
	}
}

func TestShutdownFinishesInflightReplies(t *testing.T) {
	s, addr := startServer(t, Config{}, newTestRegistry(&testHandlers{}))
	nc := dial(t, addr)
	write(t, nc, encodeRequest(heartbeat("delay-100", 7), 4, 1, nil))
	poll.Until(t, "request read", func() bool { return s.ConnCount() == 1 })
	time.Sleep(10 * time.Millisecond) // let the reader hand the request to the handler

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(ctx) }()
	if corr, _ := mustReadResponse(t, nc); corr != 1 {
		t.Fatalf("correlation id %d, want 1", corr)
	}
	expectClosed(t, nc)
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("listener still accepting after Shutdown")
	}
}

func TestShutdownDeadlineCloses(t *testing.T) {
	h := &testHandlers{release: make(chan struct{})} // never released
	s, addr := startServer(t, Config{}, newTestRegistry(h))
	nc := dial(t, addr)
	write(t, nc, encodeRequest(heartbeat("block", 0), 4, 1, nil))
	poll.Until(t, "request handled", func() bool { return h.handled.Load() == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want context.DeadlineExceeded", err)
	}
	expectClosed(t, nc)
	if n := s.ConnCount(); n != 0 {
		t.Fatalf("ConnCount %d after Shutdown", n)
	}
}

func TestServeAfterClose(t *testing.T) {
	s, err := NewServer(Config{}, NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
}

func TestNewServerValidatesConfig(t *testing.T) {
	cases := []struct {
		cfg   Config
		field string
	}{
		{Config{MaxRequestBytes: -1}, "MaxRequestBytes"},
		{Config{MaxRequestBytes: 5}, "MaxRequestBytes"},
		{Config{MaxInflight: -1}, "MaxInflight"},
		{Config{IdleTimeout: -time.Second}, "IdleTimeout"},
	}
	for _, tc := range cases {
		_, err := NewServer(tc.cfg, NewRegistry())
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("NewServer(%+v) = %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
	s, err := NewServer(Config{}, NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if def := DefaultConfig(); s.cfg.MaxRequestBytes != def.MaxRequestBytes ||
		s.cfg.MaxInflight != def.MaxInflight || s.cfg.IdleTimeout != def.IdleTimeout {
		t.Fatalf("zero Config did not take defaults: %+v", s.cfg)
	}
}

func TestRegisterPanics(t *testing.T) {
	noop := func(context.Context, *Conn, kmsg.Request) Reply { return NoResponse() }
	cases := map[string]func(r *Registry){
		"duplicate":     func(r *Registry) { r.Register(3, 0, 1, noop); r.Register(3, 2, 3, noop) },
		"ApiVersions":   func(r *Registry) { r.Register(18, 0, 3, noop) },
		"unknown key":   func(r *Registry) { r.Register(9999, 0, 0, noop) },
		"negative min":  func(r *Registry) { r.Register(3, -1, 1, noop) },
		"min above max": func(r *Registry) { r.Register(3, 5, 4, noop) },
		"beyond kmsg":   func(r *Registry) { r.Register(3, 0, 100, noop) },
		"nil handler":   func(r *Registry) { r.Register(3, 0, 1, nil) },
		"after NewServer": func(r *Registry) {
			if _, err := NewServer(Config{}, r); err != nil {
				panic("unexpected: " + err.Error())
			}
			r.Register(3, 0, 1, noop)
		},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if p := recover(); p == nil {
					t.Fatal("Register did not panic")
				} else if s, ok := p.(string); ok && strings.HasPrefix(s, "unexpected") {
					t.Fatal(s)
				}
			}()
			f(NewRegistry())
		})
	}
}

func sameKeys(a, b []kmsg.ApiVersionsResponseApiKey) bool {
	return slices.EqualFunc(a, b, func(x, y kmsg.ApiVersionsResponseApiKey) bool {
		return x.ApiKey == y.ApiKey && x.MinVersion == y.MinVersion && x.MaxVersion == y.MaxVersion
	})
}

func TestHandlerBugsCloseConnection(t *testing.T) {
	reg := NewRegistry()
	reg.Register(3, 0, 12, func(context.Context, *Conn, kmsg.Request) Reply {
		return Respond(kmsg.NewPtrHeartbeatResponse()) // wrong API
	})
	reg.Register(12, 0, 4, func(context.Context, *Conn, kmsg.Request) Reply { return Defer(nil) })
	reg.Register(19, 0, 4, func(context.Context, *Conn, kmsg.Request) Reply {
		return Defer(func(context.Context) kmsg.Response { return nil })
	})
	reg.Register(14, 0, 5, func(context.Context, *Conn, kmsg.Request) Reply {
		return Defer(func(context.Context) kmsg.Response { panic("deferred panic") })
	})
	reg.Register(0, 0, 9, func(context.Context, *Conn, kmsg.Request) Reply { return Respond(nil) })
	s, addr := startServer(t, Config{}, reg)
	for _, req := range []kmsg.Request{
		kmsg.NewPtrMetadataRequest(), kmsg.NewPtrHeartbeatRequest(), kmsg.NewPtrCreateTopicsRequest(),
		kmsg.NewPtrSyncGroupRequest(), kmsg.NewPtrProduceRequest(),
	} {
		nc := dial(t, addr)
		write(t, nc, encodeRequest(req, 1, 1, nil))
		expectClosed(t, nc)
	}
	poll.Until(t, "connections to close", func() bool { return s.ConnCount() == 0 })
}
