// Package auth owns listeners' security: the SASL mechanisms (PLAIN,
// SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER), SCRAM credentials and the
// principals connections authenticate as.
//
// The wire layer runs the Kafka side of the handshake (SaslHandshake,
// SaslAuthenticate, re-authentication, the pre-authentication bounds) and
// asks an Authenticator, built here, to run one mechanism's exchange. This
// package never touches a connection's socket; it reads credentials from a
// metastore.CredentialStore at every authentication (so a change applies on
// every agent at once) and never stores or logs a password or token.
package auth
