package wire

import "net"

// SecurityProtocol is how a listener's connections are secured, with
// Kafka's names.
type SecurityProtocol string

const (
	Plaintext     SecurityProtocol = "PLAINTEXT"
	SSL           SecurityProtocol = "SSL"
	SASLPlaintext SecurityProtocol = "SASL_PLAINTEXT"
	SASLSSL       SecurityProtocol = "SASL_SSL"
)

// Listener describes the listener a connection came in on.
type Listener struct {
	// Name is the listener's name in `listeners` (Kafka lets it differ
	// from the protocol through listener.security.protocol.map); Metadata
	// answers with the addresses advertised for this name.
	Name     string
	Protocol SecurityProtocol
}

// AnonymousPrincipal is the principal of a connection that has not
// authenticated: PLAINTEXT, and SSL without a client certificate, as in
// Kafka.
const AnonymousPrincipal = "User:ANONYMOUS"

// defaultListener is what Serve serves: one plaintext listener.
var defaultListener = Listener{Name: string(Plaintext), Protocol: Plaintext}

// Serve accepts connections on ln as a PLAINTEXT listener; see ServeListener.
func (s *Server) Serve(ln net.Listener) error { return s.ServeListener(ln, defaultListener) }

// Listener returns the listener the connection came in on.
func (c *Conn) Listener() Listener { return c.listener }

// Principal returns the connection's authenticated principal, "Type:Name"
// as in Kafka (e.g. "User:alice"), or AnonymousPrincipal.
func (c *Conn) Principal() string {
	if p := c.principal.Load(); p != nil {
		return *p
	}
	return AnonymousPrincipal
}

// SetPrincipal records who the connection authenticated as.
func (c *Conn) SetPrincipal(p string) { c.principal.Store(&p) }
