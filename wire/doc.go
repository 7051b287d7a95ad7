// Package wire is Silt's Kafka protocol server. It owns everything between the
// TCP socket and a decoded request: framing, request and response headers,
// dispatch by API key through a Registry, the ApiVersions response (built from
// that same Registry so advertised versions never drift from handlers), and
// the connection lifecycle. It knows nothing about storage.
//
// A Server accepts connections and runs two goroutines per Conn: a reader that
// decodes requests with kmsg and calls the registered Handler for each one in
// order, and a writer that writes the Replies strictly in request order. A
// Handler does order-sensitive work before returning and hands anything that
// must wait (durability, long polling) back as a Defer reply, which lets the
// reader pipeline later requests up to Config.MaxInflight.
//
// Client input never panics the process and never makes the server allocate
// beyond its bounds: a frame is at most Config.MaxRequestBytes, and every
// frame reserves its size and what it will decode into in one budget shared
// by all connections (Config.MaxInflightRequestBytes, budget.go) before it
// is read, until its reply is written. A malformed, oversized, unknown or
// hostile request (one whose arrays could decode into more than the budget)
// is logged and its connection closed, as Kafka brokers do. Kafka protocol
// errors are error codes that handlers set on their responses; a Go error at
// this layer means "close this connection".
//
// Each connection belongs to a Listener with a security protocol
// (listener.go). On SASL_PLAINTEXT and SASL_SSL listeners the Server runs
// SaslHandshake and SaslAuthenticate itself, delegating each mechanism's
// exchange to Config.Authenticator, and serves nothing else until the
// connection has authenticated (sasl.go).
//
// SSL and SASL_SSL listeners are served with ServeTLS (tls.go): each
// connection does its TLS handshake on its own goroutine, within a
// deadline, before its reader starts; on SSL a verified client
// certificate sets the connection's principal. (ServeListener serves a
// socket as it is, e.g. one already wrapped by tls.NewListener.)
package wire
