package metastore

import "context"

// CredentialStore keeps users' SCRAM credentials (RFC 5802): the salt,
// iteration count, StoredKey and ServerKey a server needs to verify a
// password, never the password itself. Agents read a credential at every
// authentication, so a change applies on every agent at once.
type CredentialStore interface {
	// ScramCredential returns user's credential for mechanism
	// ("SCRAM-SHA-256" or "SCRAM-SHA-512"); a user without one gives
	// ErrUnknownCredential.
	ScramCredential(ctx context.Context, user, mechanism string) (ScramCredential, error)
	// ScramCredentials lists the credentials of users (every user's if
	// users is nil), ordered by user then mechanism. Users without any are
	// simply absent.
	ScramCredentials(ctx context.Context, users []string) ([]ScramCredential, error)
	// AlterScramCredentials deletes and upserts credentials in ONE
	// transaction. It returns the deletions that matched no credential,
	// which changed nothing; the rest is applied. An upsert replaces the
	// user's credential for that mechanism.
	AlterScramCredentials(ctx context.Context, deletions []ScramCredentialKey, upserts []ScramCredential) (notFound []ScramCredentialKey, err error)
}

// ScramCredentialKey names one credential: a user and a SCRAM mechanism.
type ScramCredentialKey struct {
	User      string
	Mechanism string // "SCRAM-SHA-256" or "SCRAM-SHA-512"
}

// ScramCredential is what verifies a user's password for one mechanism.
type ScramCredential struct {
	ScramCredentialKey
	Salt       []byte
	Iterations int32
	StoredKey  []byte // H(ClientKey)
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
}
