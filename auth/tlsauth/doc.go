// Package tlsauth is the TLS side of listener security: the server
// certificate an agent presents (re-read from disk when a rotation replaces
// the files, so cert-manager needs no restart), client-certificate
// verification (tls.client.auth), and the principal a client certificate
// stands for (ssl.principal.mapping.rules, with Kafka's syntax).
//
// ServerConfig builds the *tls.Config handed to wire for SSL and SASL_SSL
// listeners; wire runs the handshake on each connection's goroutine and
// asks a PrincipalMapper for the principal of a verified client
// certificate. This package knows nothing of Kafka requests, storage or the
// SASL mechanisms.
package tlsauth
