package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"

	"github.com/siltstream/silt/metastore"
)

// SCRAM iteration bounds, Kafka's: RFC 7677's minimum and ScramControlManager's
// maximum.
const (
	MinScramIterations = 4096
	MaxScramIterations = 16384
)

// ScramMechanism is one SCRAM variant (RFC 5802, RFC 7677).
type ScramMechanism struct {
	name string
	typ  int8 // Kafka's ScramMechanism type in the admin APIs
	hash func() hash.Hash
}

var (
	ScramSHA256 = ScramMechanism{name: "SCRAM-SHA-256", typ: 1, hash: sha256.New}
	ScramSHA512 = ScramMechanism{name: "SCRAM-SHA-512", typ: 2, hash: sha512.New}
)

// Name is the SASL mechanism name, e.g. "SCRAM-SHA-512".
func (m ScramMechanism) Name() string { return m.name }

// Type is the mechanism's number in DescribeUserScramCredentials and
// AlterUserScramCredentials: 1 for SCRAM-SHA-256, 2 for SCRAM-SHA-512.
func (m ScramMechanism) Type() int8 { return m.typ }

// ScramMechanismByName finds a mechanism by its SASL name.
func ScramMechanismByName(name string) (ScramMechanism, bool) {
	for _, m := range []ScramMechanism{ScramSHA256, ScramSHA512} {
		if m.name == name {
			return m, true
		}
	}
	return ScramMechanism{}, false
}

// ScramMechanismByType finds a mechanism by its Kafka type number.
func ScramMechanismByType(typ int8) (ScramMechanism, bool) {
	for _, m := range []ScramMechanism{ScramSHA256, ScramSHA512} {
		if m.typ == typ {
			return m, true
		}
	}
	return ScramMechanism{}, false
}

func (m ScramMechanism) hmac(key []byte, parts ...string) []byte {
	h := hmac.New(m.hash, key)
	for _, p := range parts {
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

func (m ScramMechanism) h(b []byte) []byte {
	h := m.hash()
	h.Write(b)
	return h.Sum(nil)
}

// SaltedPassword is Hi(password, salt, iterations) of RFC 5802: PBKDF2 with
// HMAC of the mechanism's hash.
func (m ScramMechanism) SaltedPassword(password string, salt []byte, iterations int) ([]byte, error) {
	return pbkdf2.Key(m.hash, password, salt, iterations, m.hash().Size())
}

// storedKey is H(HMAC(SaltedPassword, "Client Key")).
func (m ScramMechanism) storedKey(salted []byte) []byte {
	return m.h(m.hmac(salted, "Client Key"))
}

// CheckIterations validates an iteration count as Kafka does.
func CheckIterations(iterations int32) error {
	switch {
	case iterations < MinScramIterations:
		return fmt.Errorf("too few iterations: %d is less than %d", iterations, MinScramIterations)
	case iterations > MaxScramIterations:
		return fmt.Errorf("too many iterations: %d is more than %d", iterations, MaxScramIterations)
	}
	return nil
}

// CredentialFromSaltedPassword turns what AlterUserScramCredentials carries
// (salt, iterations, SaltedPassword) into the stored credential: StoredKey
// and ServerKey, never the salted password itself.
func CredentialFromSaltedPassword(user string, m ScramMechanism, salt []byte, iterations int32, salted []byte) metastore.ScramCredential {
	return metastore.ScramCredential{
		ScramCredentialKey: metastore.ScramCredentialKey{User: user, Mechanism: m.name},
		Salt:               append([]byte(nil), salt...),
		Iterations:         iterations,
		StoredKey:          m.storedKey(salted),
		ServerKey:          m.hmac(salted, "Server Key"),
	}
}

// NewCredential derives a credential for password with a fresh random
// salt, for tools that write the store directly.
func NewCredential(user string, m ScramMechanism, password string, iterations int32) (metastore.ScramCredential, error) {
	if err := CheckIterations(iterations); err != nil {
		return metastore.ScramCredential{}, err
	}
	salt := make([]byte, 32)
	rand.Read(salt)
	salted, err := m.SaltedPassword(password, salt, int(iterations))
	if err != nil {
		return metastore.ScramCredential{}, err
	}
	return CredentialFromSaltedPassword(user, m, salt, iterations, salted), nil
}

// verifyPassword reports whether password matches c: it derives the salted
// password with c's salt and iterations and compares StoredKey in
// constant time.
func verifyPassword(m ScramMechanism, c metastore.ScramCredential, password string) bool {
	if CheckIterations(c.Iterations) != nil {
		return false
	}
	salted, err := m.SaltedPassword(password, c.Salt, int(c.Iterations))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(m.storedKey(salted), c.StoredKey) == 1
}
