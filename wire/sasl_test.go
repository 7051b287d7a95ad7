package wire

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/poll"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testAuthenticator has two mechanisms. "TEST": one message, "ok:<user>"
// or "ok:<user>:<lifetime ms>" succeeds, anything else fails. "TWO": the
// first message is echoed as a challenge, the second must be "ok:<user>".
type testAuthenticator struct{}

func (testAuthenticator) Mechanisms() []string { return []string{"TEST", "TWO"} }

func (testAuthenticator) Begin(mechanism string, _ *Conn) SASLExchange {
	return &testExchange{steps: map[string]int{"TEST": 1, "TWO": 2}[mechanism]}
}

type testExchange struct{ steps, n int }

func (e *testExchange) Step(_ context.Context, msg []byte) ([]byte, *SASLResult, error) {
	e.n++
	if e.n < e.steps {
		return msg, nil, nil
	}
	rest, ok := strings.CutPrefix(string(msg), "ok:")
	if !ok || e.n > e.steps {
		return nil, nil, errors.New("secret reason")
	}
	user, ms, _ := strings.Cut(rest, ":")
	lifetime, _ := strconv.Atoi(ms)
	return []byte("done"), &SASLResult{Principal: "User:" + user, SessionLifetime: time.Duration(lifetime) * time.Millisecond}, nil
}

// startSASLServer serves reg on one SASL_PLAINTEXT and one PLAINTEXT
// listener.
func startSASLServer(t *testing.T, cfg Config) (s *Server, saslAddr, plainAddr string) {
	t.Helper()
	cfg.Authenticator = testAuthenticator{}
	cfg.Logger = testLogger(t)
	s, err := NewServer(cfg, newTestRegistry(&testHandlers{}))
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	var served []chan error
	for _, l := range []Listener{{Name: "SASL", Protocol: SASLPlaintext}, {Name: "PLAIN", Protocol: Plaintext}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan error, 1)
		go func() { ch <- s.ServeListener(ln, l) }()
		served = append(served, ch)
		addrs = append(addrs, ln.Addr().String())
	}
	t.Cleanup(func() {
		s.Close()
		for _, ch := range served {
			if err := <-ch; err != nil {
				t.Errorf("ServeListener returned %v after Close", err)
			}
		}
	})
	return s, addrs[0], addrs[1]
}

func saslHandshake(t *testing.T, nc net.Conn, mechanism string, corr int32) *kmsg.SASLHandshakeResponse {
	t.Helper()
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.Mechanism = mechanism
	write(t, nc, encodeRequest(req, 1, corr, nil))
	_, body := mustReadResponse(t, nc)
	resp := kmsg.NewPtrSASLHandshakeResponse()
	resp.SetVersion(1)
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	return resp
}

func saslAuthenticate(t *testing.T, nc net.Conn, msg string, version int16, corr int32) *kmsg.SASLAuthenticateResponse {
	t.Helper()
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.SASLAuthBytes = []byte(msg)
	write(t, nc, encodeRequest(req, version, corr, nil))
	_, body := mustReadResponse(t, nc)
	if version >= 2 {
		body = body[1:] // response header v1: tagged fields
	}
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	resp.SetVersion(version)
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	return resp
}

func metadataRequest(t *testing.T, nc net.Conn, corr int32, topicBytes int) {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	if topicBytes > 0 {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = strp(strings.Repeat("t", topicBytes))
		req.Topics = append(req.Topics, rt)
	}
	write(t, nc, encodeRequest(req, 1, corr, nil))
}

func TestSASLGateBeforeAuthentication(t *testing.T) {
	s, addr, _ := startSASLServer(t, Config{})

	// ApiVersions is served and lists the SASL APIs.
	nc := dial(t, addr)
	write(t, nc, encodeRequest(kmsg.NewPtrApiVersionsRequest(), 0, 1, nil))
	_, body := mustReadResponse(t, nc)
	av := kmsg.NewPtrApiVersionsResponse()
	if err := av.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	versions := map[int16][2]int16{}
	for _, k := range av.ApiKeys {
		versions[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	if versions[17] != [2]int16{0, 1} || versions[36] != [2]int16{0, 2} {
		t.Errorf("ApiVersions: SaslHandshake %v, SaslAuthenticate %v", versions[17], versions[36])
	}
	// Anything else closes the connection unanswered.
	metadataRequest(t, nc, 2, 0)
	expectClosed(t, nc)

	// A frame over 512 KiB is refused on its size, before it is read.
	nc = dial(t, addr)
	write(t, nc, []byte{0, 0x08, 0, 1}) // 512 KiB + 1, and nothing more
	expectClosed(t, nc)
	if inUse, _ := s.InflightRequestBytes(); inUse != 0 {
		t.Errorf("request budget in use after a refused frame: %d", inUse)
	}

	// So is a request other than the SASL ones, on its API key alone: the
	// body (never sent here) is not waited for.
	nc = dial(t, addr)
	write(t, nc, []byte{0, 0, 0x10, 0, 0, 0}) // 4 KiB frame, key 0 (Produce), no body
	expectClosed(t, nc)

	// A handshake with v0 (unframed tokens) is refused.
	nc = dial(t, addr)
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.Mechanism = "TEST"
	write(t, nc, encodeRequest(req, 0, 1, nil))
	_, body = mustReadResponse(t, nc)
	hs := kmsg.NewPtrSASLHandshakeResponse()
	if err := hs.ReadFrom(body); err != nil || hs.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Errorf("SaslHandshake v0: %v, error %d", err, hs.ErrorCode)
	}
	expectClosed(t, nc)

	// After authenticating, everything is served, large frames too.
	nc = dial(t, addr)
	if r := saslHandshake(t, nc, "TWO", 1); r.ErrorCode != 0 {
		t.Fatalf("SaslHandshake: %d", r.ErrorCode)
	}
	if r := saslAuthenticate(t, nc, "hello", 2, 2); r.ErrorCode != 0 || string(r.SASLAuthBytes) != "hello" {
		t.Fatalf("first step: %d %q", r.ErrorCode, r.SASLAuthBytes)
	}
	if r := saslAuthenticate(t, nc, "ok:alice", 2, 3); r.ErrorCode != 0 || string(r.SASLAuthBytes) != "done" || r.SessionLifetimeMillis != 0 {
		t.Fatalf("last step: %d %q %d", r.ErrorCode, r.SASLAuthBytes, r.SessionLifetimeMillis)
	}
	metadataRequest(t, nc, 4, MaxPreAuthRequestBytes)
	if corr, _ := mustReadResponse(t, nc); corr != 4 {
		t.Fatalf("Metadata after authentication: correlation id %d", corr)
	}
}

func TestSASLFailureIsDelayedThenCloses(t *testing.T) {
	const delay = 200 * time.Millisecond
	_, addr, _ := startSASLServer(t, Config{FailedAuthenticationDelay: delay})
	nc := dial(t, addr)
	saslHandshake(t, nc, "TEST", 1)
	start := time.Now()
	r := saslAuthenticate(t, nc, "wrong", 1, 2)
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("failure answered after %v, before the %v delay", elapsed, delay)
	}
	if r.ErrorCode != kerr.SaslAuthenticationFailed.Code || r.ErrorMessage == nil || strings.Contains(*r.ErrorMessage, "secret") {
		t.Errorf("failure: error %d, message %v", r.ErrorCode, r.ErrorMessage)
	}
	expectClosed(t, nc)

	// An unknown mechanism: the enabled list, then closed.
	nc = dial(t, addr)
	if r := saslHandshake(t, nc, "GSSAPI", 1); r.ErrorCode != kerr.UnsupportedSaslMechanism.Code || strings.Join(r.SupportedMechanisms, ",") != "TEST,TWO" {
		t.Errorf("unknown mechanism: error %d, mechanisms %v", r.ErrorCode, r.SupportedMechanisms)
	}
	expectClosed(t, nc)
}

func TestSASLSessionLifetimeAndReauthentication(t *testing.T) {
	_, addr, _ := startSASLServer(t, Config{FailedAuthenticationDelay: -1})
	nc := dial(t, addr)
	saslHandshake(t, nc, "TEST", 1)
	if r := saslAuthenticate(t, nc, "ok:alice:60000", 1, 2); r.ErrorCode != 0 || r.SessionLifetimeMillis != 60000 {
		t.Fatalf("authenticate v1: error %d, lifetime %d", r.ErrorCode, r.SessionLifetimeMillis)
	}
	// Re-authentication as the same principal works and serves on.
	saslHandshake(t, nc, "TEST", 3)
	// Taken before the server starts the session, so never after its end.
	expiresNoEarlier := time.Now().Add(100 * time.Millisecond)
	if r := saslAuthenticate(t, nc, "ok:alice:100", 1, 4); r.ErrorCode != 0 || r.SessionLifetimeMillis != 100 {
		t.Fatalf("re-authenticate: error %d, lifetime %d", r.ErrorCode, r.SessionLifetimeMillis)
	}
	// Once the 100ms session has passed, only re-authentication is served.
	for corr := int32(5); ; corr++ {
		metadataRequest(t, nc, corr, 0)
		if _, _, err := readResponse(nc); err != nil {
			if time.Now().Before(expiresNoEarlier) {
				t.Fatalf("closed before the session expired: %v", err)
			}
			break
		}
	}

	// Re-authenticating as someone else, or with another mechanism, fails.
	for _, c := range []struct{ mech, msg string }{{"TEST", "ok:mallory"}, {"TWO", ""}} {
		nc := dial(t, addr)
		saslHandshake(t, nc, "TEST", 1)
		saslAuthenticate(t, nc, "ok:alice", 1, 2)
		if c.mech == "TWO" {
			if r := saslHandshake(t, nc, "TWO", 3); r.ErrorCode != kerr.IllegalSaslState.Code {
				t.Errorf("re-authentication with another mechanism: error %d", r.ErrorCode)
			}
		} else {
			saslHandshake(t, nc, "TEST", 3)
			if r := saslAuthenticate(t, nc, c.msg, 1, 4); r.ErrorCode != kerr.SaslAuthenticationFailed.Code {
				t.Errorf("re-authentication as another principal: error %d", r.ErrorCode)
			}
		}
		expectClosed(t, nc)
	}

	// v0 clients cannot re-authenticate: they learn no lifetime and their
	// session does not expire.
	nc = dial(t, addr)
	saslHandshake(t, nc, "TEST", 1)
	sent := time.Now()
	if r := saslAuthenticate(t, nc, "ok:alice:1", 0, 2); r.ErrorCode != 0 {
		t.Fatalf("authenticate v0: error %d", r.ErrorCode)
	}
	// Past the 1 ms lifetime a v1 session would have expired.
	poll.Until(t, "the 1 ms session lifetime to pass", func() bool { return time.Since(sent) > 2*time.Millisecond })
	metadataRequest(t, nc, 3, 0)
	if corr, _ := mustReadResponse(t, nc); corr != 3 {
		t.Fatalf("Metadata after a v0 authentication: correlation id %d", corr)
	}
}

func TestSASLOnPlaintextListenerAndWithoutAuthenticator(t *testing.T) {
	_, _, plain := startSASLServer(t, Config{})
	nc := dial(t, plain)
	if r := saslHandshake(t, nc, "TEST", 1); r.ErrorCode != kerr.IllegalSaslState.Code {
		t.Errorf("SaslHandshake on PLAINTEXT: error %d", r.ErrorCode)
	}
	metadataRequest(t, nc, 2, 0) // the connection stays usable
	if corr, _ := mustReadResponse(t, nc); corr != 2 {
		t.Fatalf("Metadata: correlation id %d", corr)
	}

	s, err := NewServer(Config{}, NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ServeListener(ln, Listener{Name: "SASL", Protocol: SASLSSL}); err == nil {
		t.Error("ServeListener of a SASL listener without an Authenticator succeeded")
	}
}
