package auth

import (
	"context"
	"strings"
	"time"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

// plainExchange is SASL PLAIN (RFC 4616), checked against the user's SCRAM
// credentials: the password is salted with the stored salt and iterations
// and its StoredKey compared, so no password is ever stored.
type plainExchange struct {
	attempt
	done bool
}

// maxPlainMessage bounds authzid, authcid and password together.
const maxPlainMessage = 4 << 10

func (e *plainExchange) Step(ctx context.Context, msg []byte) ([]byte, *wire.SASLResult, error) {
	if e.done {
		return nil, nil, e.fail("message after the exchange ended")
	}
	e.done = true
	if len(msg) > maxPlainMessage {
		return nil, nil, e.fail("message too long")
	}
	// message = [authzid] NUL authcid NUL passwd
	parts := strings.Split(string(msg), "\x00")
	if len(parts) != 3 || parts[1] == "" {
		return nil, nil, e.fail("malformed PLAIN message")
	}
	authzid, user, password := parts[0], parts[1], parts[2]
	e.user = user
	if authzid != "" && authzid != user {
		return nil, nil, e.fail("authorization id differs from the user name")
	}
	creds, err := e.a.creds.ScramCredentials(ctx, []string{user})
	if err != nil {
		e.a.log.Error("SASL authentication: reading credentials failed", "mechanism", e.mechanism, "user", user, "err", err)
		return nil, nil, e.fail("credential store unavailable")
	}
	// The strongest credential first; an unknown user costs a derivation
	// too, so timing does not tell users apart.
	var cred metastore.ScramCredential
	m := ScramSHA512
	found := false
	for _, c := range creds {
		if cm, ok := ScramMechanismByName(c.Mechanism); ok && (!found || cm.name == ScramSHA512.name) {
			cred, m, found = c, cm, true
		}
	}
	if !found {
		verifyPassword(ScramSHA512, e.a.decoy(user, ScramSHA512), password)
		return nil, nil, e.fail("invalid credentials")
	}
	if !verifyPassword(m, cred, password) {
		return nil, nil, e.fail("invalid credentials")
	}
	return nil, e.succeed(time.Time{}), nil
}
