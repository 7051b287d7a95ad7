package wire

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SASL on SASL_PLAINTEXT and SASL_SSL listeners, as Kafka brokers do it:
//
//   - Until a connection has authenticated, only ApiVersions, SaslHandshake
//     and SaslAuthenticate (v0–v2) are served; any
//     other request closes the connection, and a frame larger than
//     MaxPreAuthRequestBytes closes it before it is read.
//   - SaslHandshake is v1: the exchange travels in SaslAuthenticate
//     requests. v0 (raw SASL tokens after the handshake) is refused with
//     UNSUPPORTED_VERSION, but ApiVersions advertises 0–1: librdkafka
//     before 2.10 sends v1 only to brokers whose range includes v0
//     (librdkafka PR 4983).
//   - SaslHandshake picks a mechanism of the Authenticator; SaslAuthenticate
//     requests carry that mechanism's exchange (SASLExchange.Step).
//   - A failed exchange, an unknown mechanism or a request out of order is
//     answered with SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM
//     or ILLEGAL_SASL_STATE after Config.FailedAuthenticationDelay, then the
//     connection closes, so guessing passwords is slow. The message names
//     the mechanism only; the Authenticator logs the reason.
//   - KIP-368: a successful SaslAuthenticate v1+ answers the session
//     lifetime the exchange gave. Once it has passed, any request but
//     SaslHandshake and SaslAuthenticate closes the connection; a new
//     handshake on the live connection re-authenticates, with the same
//     mechanism and as the same principal.
//
// All SASL state of a connection lives on its reader goroutine, where
// handlers run, so it needs no locking.

// MaxPreAuthRequestBytes bounds request frames before authentication
// (Kafka's sasl.server.max.receive.size).
const MaxPreAuthRequestBytes = 512 << 10

const (
	saslHandshakeKey    = int16(kmsg.SASLHandshake)
	saslAuthenticateKey = int16(kmsg.SASLAuthenticate)
)

// Authenticator runs the SASL mechanisms of SASL listeners; package auth
// implements it.
type Authenticator interface {
	// Mechanisms lists the enabled mechanisms' names, as SaslHandshake
	// answers them.
	Mechanisms() []string
	// Begin starts one exchange of mechanism (one of Mechanisms) on c.
	Begin(mechanism string, c *Conn) SASLExchange
}

// SASLExchange is one run of a mechanism, fed the client's messages in order.
type SASLExchange interface {
	// Step takes the client's next message and returns the server's reply
	// to it. A non-nil result means the exchange succeeded with this
	// reply. An error means authentication failed: the client learns
	// nothing but SASL_AUTHENTICATION_FAILED, so the error is for the
	// Authenticator's own logging and never reaches the client.
	Step(ctx context.Context, msg []byte) (reply []byte, res *SASLResult, err error)
}

// SASLResult is what a successful exchange establishes.
type SASLResult struct {
	// Principal is who authenticated, "User:<name>".
	Principal string
	// SessionLifetime is how long the authentication holds (KIP-368): the
	// credential's remaining life or connections.max.reauth.ms, whichever
	// is shorter; 0 means it does not expire.
	SessionLifetime time.Duration
}

// UsesSASL reports whether connections of p authenticate with SASL.
func (p SecurityProtocol) UsesSASL() bool { return p == SASLPlaintext || p == SASLSSL }

// saslState is a connection's SASL progress. Only the reader goroutine
// touches it.
type saslState struct {
	authenticated bool         // an exchange has succeeded on this connection
	mechanism     string       // the mechanism of the last handshake
	exchange      SASLExchange // between a handshake and the end of its exchange
	expires       time.Time    // when the session ends; zero: never
}

// needsAuthentication reports whether the connection is on a SASL listener
// and has not authenticated yet.
func (c *Conn) needsAuthentication() bool {
	return c.listener.Protocol.UsesSASL() && !c.sasl.authenticated
}

// admitBeforeReading refuses, from its API key alone and before its body
// is read or anything is reserved for it, a request an unauthenticated
// connection may not send.
func (c *Conn) admitBeforeReading(key int16) error {
	if !c.needsAuthentication() {
		return nil
	}
	switch key {
	case apiVersionsKey, saslHandshakeKey, saslAuthenticateKey:
		return nil
	}
	return protocolErrorf("%s request before SASL authentication", kmsg.NameForKey(key))
}

// admit decides whether a request with key may be served on the connection
// now; an error closes the connection.
func (c *Conn) admit(key int16) error {
	if !c.listener.Protocol.UsesSASL() || key == saslHandshakeKey || key == saslAuthenticateKey {
		return nil
	}
	st := &c.sasl
	switch {
	case !st.authenticated && key == apiVersionsKey:
		return nil
	case !st.authenticated:
		return protocolErrorf("%s request before SASL authentication", kmsg.NameForKey(key))
	case !st.expires.IsZero() && !time.Now().Before(st.expires):
		c.srv.expiredSessions.Add(1)
		return protocolErrorf("%s request after the SASL session expired (KIP-368)", kmsg.NameForKey(key))
	}
	return nil
}

// ExpiredSessionsClosed counts connections closed because a request came
// after their SASL session had expired (Kafka's
// expired-connections-killed-count).
func (s *Server) ExpiredSessionsClosed() int64 { return s.expiredSessions.Load() }

// registerSASL adds SaslHandshake and SaslAuthenticate, answered by the
// Server, to reg.
func (s *Server) registerSASL(reg *Registry) {
	reg.Register(saslHandshakeKey, 0, 1, s.handleSaslHandshake)
	reg.Register(saslAuthenticateKey, 0, 2, s.handleSaslAuthenticate)
}

func (s *Server) handleSaslHandshake(_ context.Context, c *Conn, req kmsg.Request) Reply {
	r := req.(*kmsg.SASLHandshakeRequest)
	resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
	enabled := s.cfg.Authenticator.Mechanisms()
	resp.SupportedMechanisms = enabled
	st := &c.sasl
	switch {
	case !c.listener.Protocol.UsesSASL():
		// As Kafka: answered, not fatal, on a listener without SASL.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return Respond(resp)
	case r.Version < 1:
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		return s.failAuthentication(c, resp, fmt.Errorf("SaslHandshake v0 (unframed SASL tokens) is not supported"))
	case st.exchange != nil:
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return s.failAuthentication(c, resp, fmt.Errorf("SaslHandshake during an exchange"))
	case !slices.Contains(enabled, r.Mechanism):
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return s.failAuthentication(c, resp, fmt.Errorf("unsupported SASL mechanism %q", r.Mechanism))
	case st.authenticated && r.Mechanism != st.mechanism:
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return s.failAuthentication(c, resp, fmt.Errorf("re-authentication changes the SASL mechanism from %s to %q", st.mechanism, r.Mechanism))
	}
	st.mechanism = r.Mechanism
	st.exchange = s.cfg.Authenticator.Begin(r.Mechanism, c)
	return Respond(resp)
}

func (s *Server) handleSaslAuthenticate(ctx context.Context, c *Conn, req kmsg.Request) Reply {
	r := req.(*kmsg.SASLAuthenticateRequest)
	resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	st := &c.sasl
	switch {
	case !c.listener.Protocol.UsesSASL():
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = strPtr("SaslAuthenticate on a listener without SASL")
		return Respond(resp)
	case st.exchange == nil:
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = strPtr("SaslAuthenticate without a SaslHandshake")
		return s.failAuthentication(c, resp, fmt.Errorf("SaslAuthenticate without a SaslHandshake"))
	}
	reply, res, err := st.exchange.Step(ctx, r.SASLAuthBytes)
	var reason error // the Authenticator logs its own failures
	if err == nil && res != nil && st.authenticated && res.Principal != c.Principal() {
		// As Kafka: re-authentication may not change the principal.
		err = fmt.Errorf("re-authentication as %s on a connection of %s", res.Principal, c.Principal())
		reason = err
	}
	if err != nil {
		st.exchange = nil
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = strPtr("Authentication failed during authentication due to invalid credentials with SASL mechanism " + st.mechanism)
		return s.failAuthentication(c, resp, reason)
	}
	resp.SASLAuthBytes = reply
	if res == nil {
		return Respond(resp)
	}
	st.exchange = nil
	st.authenticated = true
	st.expires = time.Time{}
	c.SetPrincipal(res.Principal)
	// KIP-368: only clients that can re-authenticate (v1+) learn the
	// lifetime, and only their sessions expire, as in Kafka.
	if res.SessionLifetime > 0 && r.Version >= 1 {
		st.expires = time.Now().Add(res.SessionLifetime)
		resp.SessionLifetimeMillis = max(res.SessionLifetime.Milliseconds(), 1)
	}
	c.log.Debug("SASL authentication succeeded", "mechanism", st.mechanism, "principal", res.Principal,
		"session_lifetime", res.SessionLifetime)
	return Respond(resp)
}

// failAuthentication answers resp after Config.FailedAuthenticationDelay
// and then closes the connection. reason, if set, is logged (it must hold
// no secret).
func (s *Server) failAuthentication(c *Conn, resp kmsg.Response, reason error) Reply {
	if reason != nil {
		c.log.Info("SASL handshake refused", "reason", reason)
	}
	delay := s.cfg.FailedAuthenticationDelay
	r := Defer(func(ctx context.Context) kmsg.Response {
		if delay > 0 {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil
			}
		}
		return resp
	})
	r.thenClose = true
	return r
}

func strPtr(s string) *string { return &s }
