package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// testLogWriter sends server logs to t.Log, so they show only for failing
// tests or -v. Server.Close waits for every connection goroutine, so nothing
// logs after the test ends.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testHandlers records what the test registry's handlers saw.
type testHandlers struct {
	metadataVersions    sync.Map // version -> true
	createTopicsVersion atomic.Int32
	handled             atomic.Int32  // Heartbeat requests handled
	release             chan struct{} // if non-nil, Heartbeat "block" waits for it
	lastSoftware        atomic.Pointer[[2]string]
	lastClientID        atomic.Pointer[string]
}

// newTestRegistry registers:
//   - Metadata v0–12: one broker, node 0, at the address the client dialed.
//   - CreateTopics v0–4: echoes the topic names with no error.
//   - Heartbeat v0–4: group "delay-<ms>" defers the reply by that long,
//     "block" defers until h.release is closed, "close" returns CloseConn,
//     "zero" returns the zero Reply; the response's ThrottleMillis echoes the
//     GenerationID so tests can match responses to requests.
//   - Produce v3–9: acks=0 gets NoResponse, else an empty response.
//   - SyncGroup v0–5: panics.
func newTestRegistry(h *testHandlers) *Registry {
	reg := NewRegistry()
	reg.Register(3, 0, 12, func(ctx context.Context, c *Conn, req kmsg.Request) Reply {
		r := req.(*kmsg.MetadataRequest)
		h.metadataVersions.Store(r.Version, true)
		name, version := c.ClientSoftware()
		h.lastSoftware.Store(&[2]string{name, version})
		id := c.ClientID()
		h.lastClientID.Store(&id)
		resp := r.ResponseKind().(*kmsg.MetadataResponse)
		host, port, _ := net.SplitHostPort(c.LocalAddr().String())
		p, _ := strconv.Atoi(port)
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = 0, host, int32(p)
		resp.Brokers = append(resp.Brokers, b)
		cluster := "silt-test"
		resp.ClusterID = &cluster
		resp.ControllerID = 0
		return Respond(resp)
	})
	reg.Register(19, 0, 4, func(ctx context.Context, c *Conn, req kmsg.Request) Reply {
		r := req.(*kmsg.CreateTopicsRequest)
		h.createTopicsVersion.Store(int32(r.Version))
		resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic = t.Topic
			resp.Topics = append(resp.Topics, rt)
		}
		return Respond(resp)
	})
	reg.Register(12, 0, 4, func(ctx context.Context, c *Conn, req kmsg.Request) Reply {
		r := req.(*kmsg.HeartbeatRequest)
		h.handled.Add(1)
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ThrottleMillis = r.Generation
		switch g := r.Group; {
		case g == "block":
			return Defer(func(ctx context.Context) kmsg.Response {
				select {
				case <-h.release:
					return resp
				case <-ctx.Done():
					return nil
				}
			})
		case g == "close":
			return CloseConn(errors.New("test asked to close"))
		case g == "zero":
			return Reply{}
		case strings.HasPrefix(g, "delay-"):
			ms, _ := strconv.Atoi(strings.TrimPrefix(g, "delay-"))
			ms = min(ms, 500) // keep fuzzed delays short
			return Defer(func(ctx context.Context) kmsg.Response {
				select {
				case <-time.After(time.Duration(ms) * time.Millisecond):
					return resp
				case <-ctx.Done():
					return nil
				}
			})
		}
		return Respond(resp)
	})
	reg.Register(0, 3, 9, func(ctx context.Context, c *Conn, req kmsg.Request) Reply {
		r := req.(*kmsg.ProduceRequest)
		if r.Acks == 0 {
			return NoResponse()
		}
		return Respond(r.ResponseKind())
	})
	reg.Register(14, 0, 5, func(ctx context.Context, c *Conn, req kmsg.Request) Reply {
		panic("test handler panic")
	})
	return reg
}

// startServer serves reg on a loopback listener until the test ends.
func startServer(t testing.TB, cfg Config, reg *Registry) (*Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := NewServer(cfg, reg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve returned %v after Close", err)
		}
	})
	return s, ln.Addr().String()
}

func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc.(*net.TCPConn)
}

// encodeRequest frames req at version with the request header a client
// would send.
func encodeRequest(req kmsg.Request, version int16, correlationID int32, clientID *string) []byte {
	req.SetVersion(version)
	b := make([]byte, 4, 128)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	if clientID == nil {
		b = binary.BigEndian.AppendUint16(b, 0xffff)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(*clientID)))
		b = append(b, *clientID...)
	}
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func strp(s string) *string { return &s }

func write(t testing.TB, nc net.Conn, b []byte) {
	t.Helper()
	if _, err := nc.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readResponse reads one response frame: its correlation id and the rest.
func readResponse(nc net.Conn) (int32, []byte, error) {
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<20 {
		return 0, nil, fmt.Errorf("bad response size %d", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(nc, b); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(b)), b[4:], nil
}

func mustReadResponse(t testing.TB, nc net.Conn) (int32, []byte) {
	t.Helper()
	corr, body, err := readResponse(nc)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return corr, body
}

// expectClosed asserts that the server closes nc without sending anything.
func expectClosed(t testing.TB, nc net.Conn) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	n, err := nc.Read(b[:])
	if n != 0 || err == nil {
		t.Fatalf("expected the server to close the connection, read %d bytes, err %v", n, err)
	}
	if isTimeout(err) {
		t.Fatalf("connection still open: %v", err)
	}
}

func heartbeat(group string, gen int32) *kmsg.HeartbeatRequest {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Group, r.Generation, r.MemberID = group, gen, "m"
	return r
}
