package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

// scramExchange is the server side of one SCRAM exchange (RFC 5802):
// client-first → server-first → client-final → server-final.
type scramExchange struct {
	attempt
	m    ScramMechanism
	step int

	gs2Header       string // as the client sent it, for the channel-binding check
	clientFirstBare string
	serverFirst     string
	nonce           string // client nonce + server nonce
	cred            metastore.ScramCredential
	known           bool // cred is the user's; otherwise a decoy so unknown users fail only at the proof
}

// maxScramMessage bounds a SCRAM message: names, nonces and a proof.
const maxScramMessage = 4 << 10

func (e *scramExchange) Step(ctx context.Context, msg []byte) ([]byte, *wire.SASLResult, error) {
	if len(msg) > maxScramMessage {
		return nil, nil, e.fail("message too long")
	}
	e.step++
	switch e.step {
	case 1:
		reply, err := e.first(ctx, string(msg))
		if err != nil {
			return nil, nil, err
		}
		return reply, nil, nil
	case 2:
		return e.final(string(msg))
	}
	return nil, nil, e.fail("message after the exchange ended")
}

// first parses client-first-message: gs2-header client-first-bare, where
// gs2-header is gs2-cbind-flag "," [authzid] "," and client-first-bare is
// [reserved-mext ","] username "," nonce ["," extensions].
func (e *scramExchange) first(ctx context.Context, msg string) ([]byte, error) {
	cbind, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return nil, e.fail("malformed client-first message")
	}
	switch {
	case cbind == "n", cbind == "y":
		// "y": the client could bind but thinks we cannot; we offer no
		// -PLUS mechanism, so that is right.
	case strings.HasPrefix(cbind, "p="):
		return nil, e.fail("channel binding requested; not supported")
	default:
		return nil, e.fail("malformed gs2 header")
	}
	authzid, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, e.fail("malformed client-first message")
	}
	e.gs2Header = cbind + "," + authzid + ","
	e.clientFirstBare = bare
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, e.fail("malformed client-first message")
	}
	user, err := decodeSaslName(attrs[0][2:])
	if err != nil || user == "" {
		return nil, e.fail("malformed user name")
	}
	e.user = user
	if authzid != "" {
		az, err := decodeSaslName(strings.TrimPrefix(authzid, "a="))
		if !strings.HasPrefix(authzid, "a=") || err != nil || az != user {
			return nil, e.fail("authorization id differs from the user name")
		}
	}
	for _, ext := range attrs[2:] {
		// Kafka's only extension is tokenauth (delegation tokens), which
		// Silt does not have; "m" is reserved and mandatory.
		if strings.HasPrefix(ext, "m=") || strings.HasPrefix(ext, "tokenauth=") {
			return nil, e.fail("unsupported SCRAM extension")
		}
	}
	clientNonce := attrs[1][2:]
	if clientNonce == "" || strings.ContainsAny(clientNonce, ",") {
		return nil, e.fail("malformed nonce")
	}
	cred, err := e.a.creds.ScramCredential(ctx, user, e.m.name)
	switch {
	case err == nil:
		e.cred, e.known = cred, true
	case errors.Is(err, metastore.ErrUnknownCredential):
		e.cred = e.a.decoy(user, e.m)
	default:
		e.a.log.Error("SASL authentication: reading credentials failed", "mechanism", e.m.name, "user", user, "err", err)
		return nil, e.fail("credential store unavailable")
	}
	var sn [24]byte
	rand.Read(sn[:])
	e.nonce = clientNonce + base64.RawStdEncoding.EncodeToString(sn[:])
	e.serverFirst = "r=" + e.nonce + ",s=" + base64.StdEncoding.EncodeToString(e.cred.Salt) + ",i=" + strconv.Itoa(int(e.cred.Iterations))
	return []byte(e.serverFirst), nil
}

// final checks client-final-message: channel-binding "," nonce
// ["," extensions] "," proof.
func (e *scramExchange) final(msg string) ([]byte, *wire.SASLResult, error) {
	withoutProof, proofAttr, ok := cutLast(msg, ",")
	if !ok || !strings.HasPrefix(proofAttr, "p=") {
		return nil, nil, e.fail("malformed client-final message")
	}
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, nil, e.fail("malformed client-final message")
	}
	cb, err := base64.StdEncoding.DecodeString(attrs[0][2:])
	if err != nil || string(cb) != e.gs2Header {
		return nil, nil, e.fail("channel binding does not match the gs2 header")
	}
	// The nonce must end with ours, as Kafka checks it (endsWith):
	// librdkafka 2.0 repeats its own nonce in front of the combined one.
	// The proof covers the nonce as sent, so nothing is lost.
	if got := attrs[1][2:]; len(got) < len(e.nonce) ||
		subtle.ConstantTimeCompare([]byte(got[len(got)-len(e.nonce):]), []byte(e.nonce)) != 1 {
		return nil, nil, e.fail("nonce mismatch")
	}
	proof, err := base64.StdEncoding.DecodeString(proofAttr[2:])
	if err != nil || len(proof) != len(e.cred.StoredKey) {
		return nil, nil, e.fail("malformed proof")
	}
	authMessage := e.clientFirstBare + "," + e.serverFirst + "," + withoutProof
	clientSignature := e.m.hmac(e.cred.StoredKey, authMessage)
	clientKey := make([]byte, len(proof))
	subtle.XORBytes(clientKey, proof, clientSignature)
	if subtle.ConstantTimeCompare(e.m.h(clientKey), e.cred.StoredKey) != 1 || !e.known {
		return nil, nil, e.fail("invalid credentials")
	}
	serverSignature := e.m.hmac(e.cred.ServerKey, authMessage)
	res := e.succeed(time.Time{})
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSignature)), res, nil
}

// decoy is a credential for a user who has none: stable per user (so
// repeated attempts see the same salt) and unusable, so that the exchange
// fails at the proof, as for a wrong password, and does not reveal which
// users exist.
func (a *Authenticator) decoy(user string, m ScramMechanism) metastore.ScramCredential {
	mac := hmac.New(m.hash, a.decoyKey[:])
	mac.Write([]byte(m.name + "\x00" + user))
	salt := mac.Sum(nil)[:32]
	key := make([]byte, m.hash().Size())
	rand.Read(key)
	return metastore.ScramCredential{
		ScramCredentialKey: metastore.ScramCredentialKey{User: user, Mechanism: m.name},
		Salt:               salt, Iterations: MinScramIterations, StoredKey: key, ServerKey: key,
	}
}

// decodeSaslName undoes RFC 5802's saslname escaping: "=2C" is ',' and
// "=3D" is '='; any other '=' is malformed.
func decodeSaslName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("invalid escape in %q", s)
		}
		i += 2
	}
	return b.String(), nil
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
