package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"time"
)

// TLS secures the connections of an SSL or SASL_SSL listener.
type TLS struct {
	// Config is the server's TLS configuration; it may pick a certificate
	// per connection (GetConfigForClient), which is how rotated
	// certificates reach new connections.
	Config *tls.Config
	// HandshakeTimeout bounds the handshake. Default 10 seconds.
	HandshakeTimeout time.Duration
	// Principal, if set, gives the principal of a client that presented a
	// verified certificate on an SSL listener (SASL_SSL connections
	// authenticate with SASL instead). An error refuses the connection.
	// Without Principal, or without a client certificate, the connection
	// stays AnonymousPrincipal, as in Kafka.
	Principal func(cert *x509.Certificate) (string, error)
}

const defaultHandshakeTimeout = 10 * time.Second

// ServeTLS is ServeListener for a listener whose protocol is SSL or
// SASL_SSL: each connection does its TLS handshake on its own goroutine,
// within t.HandshakeTimeout, before its first request is read, so a slow or
// silent client never holds up the accept loop.
func (s *Server) ServeTLS(ln net.Listener, l Listener, t *TLS) error {
	if !l.Protocol.usesTLS() {
		_ = ln.Close()
		return fmt.Errorf("wire: listener %s is %s: serve it with ServeListener, not ServeTLS", l.Name, l.Protocol)
	}
	if t == nil || t.Config == nil {
		_ = ln.Close()
		return fmt.Errorf("wire: listener %s (%s) needs a TLS configuration", l.Name, l.Protocol)
	}
	return s.serve(ln, l, t)
}

// usesTLS reports whether the protocol's connections are TLS.
func (p SecurityProtocol) usesTLS() bool { return p == SSL || p == SASLSSL }

// wrapTLS puts the server side of TLS over nc; the handshake happens later,
// on the connection's goroutine (handshake).
func wrapTLS(nc net.Conn, t *TLS) net.Conn {
	if t == nil {
		return nc
	}
	return tls.Server(nc, t.Config)
}

// handshake runs the TLS handshake of a TLS connection and sets the
// principal of an SSL client with a certificate. It reports whether the
// connection may go on to read requests.
func (c *Conn) handshake() bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok || c.tls == nil {
		return true
	}
	timeout := c.tls.HandshakeTimeout
	if timeout <= 0 {
		timeout = defaultHandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	_ = tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		if c.ctx.Err() == nil {
			c.log.Info("TLS handshake failed; closing connection", "listener", c.listener.Name, "err", err)
		}
		return false
	}
	_ = tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	if c.listener.Protocol != SSL || len(st.PeerCertificates) == 0 || c.tls.Principal == nil {
		return true
	}
	p, err := c.tls.Principal(st.PeerCertificates[0])
	if err != nil {
		c.log.Info("client certificate maps to no principal; closing connection", "listener", c.listener.Name,
			"subject", st.PeerCertificates[0].Subject.String(), "err", err)
		return false
	}
	c.SetPrincipal(p)
	c.log.Debug("TLS client authenticated", "listener", c.listener.Name, "principal", p)
	return true
}

// TLSConnectionState returns the connection's TLS state once its handshake
// is done; ok is false on a listener without TLS.
func (c *Conn) TLSConnectionState() (st tls.ConnectionState, ok bool) {
	tc, isTLS := c.nc.(*tls.Conn)
	if !isTLS {
		return tls.ConnectionState{}, false
	}
	return tc.ConnectionState(), true
}
