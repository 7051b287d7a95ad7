package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

// memCredentials is a CredentialStore in memory.
type memCredentials struct {
	mu sync.Mutex
	m  map[metastore.ScramCredentialKey]metastore.ScramCredential
}

func (s *memCredentials) ScramCredential(_ context.Context, user, mech string) (metastore.ScramCredential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[metastore.ScramCredentialKey{User: user, Mechanism: mech}]
	if !ok {
		return c, metastore.ErrUnknownCredential
	}
	return c, nil
}

func (s *memCredentials) ScramCredentials(_ context.Context, users []string) ([]metastore.ScramCredential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []metastore.ScramCredential
	for _, c := range s.m {
		for _, u := range users {
			if c.User == u {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

func (s *memCredentials) AlterScramCredentials(_ context.Context, del []metastore.ScramCredentialKey, up []metastore.ScramCredential) ([]metastore.ScramCredentialKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[metastore.ScramCredentialKey]metastore.ScramCredential{}
	}
	var notFound []metastore.ScramCredentialKey
	for _, k := range del {
		if _, ok := s.m[k]; !ok {
			notFound = append(notFound, k)
		}
		delete(s.m, k)
	}
	for _, c := range up {
		s.m[c.ScramCredentialKey] = c
	}
	return notFound, nil
}

func newTestAuthenticator(t testing.TB, mechs ...string) *Authenticator {
	t.Helper()
	store := &memCredentials{}
	for _, m := range []ScramMechanism{ScramSHA256, ScramSHA512} {
		c, err := NewCredential("alice", m, "pencil", 4096)
		if err != nil {
			t.Fatal(err)
		}
		store.AlterScramCredentials(context.Background(), nil, []metastore.ScramCredential{c})
	}
	a, err := New(Config{Mechanisms: mechs, Credentials: store, MaxReauth: time.Hour,
		OAuthBearer: OAuthBearerConfig{JWKSURL: "http://127.0.0.1:1/jwks"}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// exchange runs client (a franz-go mechanism) against the server side of
// mech and returns the result or the first failure.
func exchange(t *testing.T, a *Authenticator, mech string, client sasl.Mechanism) (*wire.SASLResult, error) {
	t.Helper()
	ctx := context.Background()
	sess, msg, err := client.Authenticate(ctx, "broker")
	if err != nil {
		t.Fatal(err)
	}
	srv := a.begin(mech, "127.0.0.1:1234")
	for i := 0; i < 5; i++ {
		reply, res, err := srv.Step(ctx, msg)
		if err != nil {
			return nil, err
		}
		done, next, cerr := sess.Challenge(reply)
		if cerr != nil {
			t.Fatalf("client rejects the server's message %q: %v", reply, cerr)
		}
		if res != nil {
			if !done {
				t.Fatal("server done before the client")
			}
			return res, nil
		}
		msg = next
	}
	t.Fatal("exchange did not end")
	return nil, nil
}

func TestScramAndPlainAgainstFranzGo(t *testing.T) {
	a := newTestAuthenticator(t, "SCRAM-SHA-256", "SCRAM-SHA-512", Plain)
	for _, c := range []struct {
		mech   string
		client func(user, pass string) sasl.Mechanism
	}{
		{"SCRAM-SHA-256", func(u, p string) sasl.Mechanism { return scram.Auth{User: u, Pass: p}.AsSha256Mechanism() }},
		{"SCRAM-SHA-512", func(u, p string) sasl.Mechanism { return scram.Auth{User: u, Pass: p}.AsSha512Mechanism() }},
		{Plain, func(u, p string) sasl.Mechanism { return plain.Auth{User: u, Pass: p}.AsMechanism() }},
	} {
		res, err := exchange(t, a, c.mech, c.client("alice", "pencil"))
		if err != nil || res.Principal != "User:alice" || res.SessionLifetime != time.Hour {
			t.Errorf("%s: %+v, %v", c.mech, res, err)
		}
		for _, bad := range [][2]string{{"alice", "pen"}, {"bob", "pencil"}} {
			if _, err := exchange(t, a, c.mech, c.client(bad[0], bad[1])); !errors.Is(err, errAuthenticationFailed) {
				t.Errorf("%s as %s/%s: %v, want a failure", c.mech, bad[0], bad[1], err)
			}
		}
	}
}

func TestScramRefusesChannelBindingAndBadFinals(t *testing.T) {
	a := newTestAuthenticator(t, "SCRAM-SHA-256")
	ctx := context.Background()
	if _, _, err := a.begin("SCRAM-SHA-256", "127.0.0.1:1234").Step(ctx, []byte("p=tls-unique,,n=alice,r=abc")); err == nil {
		t.Error("channel binding accepted")
	}
	e := a.begin("SCRAM-SHA-256", "127.0.0.1:1234")
	first, _, err := e.Step(ctx, []byte("n,,n=alice,r=abc"))
	if err != nil {
		t.Fatal(err)
	}
	nonce := strings.TrimPrefix(strings.Split(string(first), ",")[0], "r=")
	proof := base64.StdEncoding.EncodeToString(make([]byte, 32))
	if _, _, err := e.Step(ctx, []byte("c=biws,r="+nonce+",p="+proof)); err == nil {
		t.Error("a zero proof was accepted")
	}
}

func TestDecodeSaslName(t *testing.T) {
	for in, want := range map[string]string{"a=2Cb=3Dc": "a,b=c", "plain": "plain"} {
		if got, err := decodeSaslName(in); err != nil || got != want {
			t.Errorf("decodeSaslName(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := decodeSaslName("a=41"); err == nil {
		t.Error("a bad escape was accepted")
	}
}

func FuzzScramExchange(f *testing.F) {
	f.Add([]byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add([]byte("y,a=alice,n=alice,r=x,ext=1"), []byte("c=eSxhPWFsaWNlLA==,r=x,p="))
	f.Add([]byte("n,,n=al=2Cice,r=a"), []byte(""))
	a := newTestAuthenticator(f, "SCRAM-SHA-512")
	f.Fuzz(func(t *testing.T, first, final []byte) {
		e := a.begin("SCRAM-SHA-512", "127.0.0.1:1234")
		if _, res, err := e.Step(context.Background(), first); err != nil || res != nil {
			return
		}
		if _, res, err := e.Step(context.Background(), final); err == nil || res != nil {
			t.Fatalf("a fuzzed final message authenticated: %q", final)
		}
	})
}

func FuzzPlain(f *testing.F) {
	f.Add([]byte("\x00alice\x00pencil"))
	f.Add([]byte("alice\x00alice\x00x"))
	f.Add([]byte("\x00\x00"))
	a := newTestAuthenticator(f, Plain)
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, res, err := a.begin(Plain, "127.0.0.1:1234").Step(context.Background(), msg)
		if err == nil && (res == nil || res.Principal != "User:alice") {
			t.Fatalf("%q: %+v", msg, res)
		}
	})
}

func FuzzOAuthBearer(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	pub, _ := key.PublicKey.Bytes()
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "EC", "kid": "k", "crv": "P-256",
		"x": base64.RawURLEncoding.EncodeToString(pub[1:33]), "y": base64.RawURLEncoding.EncodeToString(pub[33:])}}})
	f.Add([]byte("n,,\x01auth=Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJhIn0.AAAA\x01\x01"))
	f.Add([]byte("n,a=x,\x01host=h\x01auth=bearer a.b.c\x01\x01"))
	f.Add([]byte("\x01"))
	a := newTestAuthenticator(f, OAuthBearer)
	keys, err := parseJWKS(jwks)
	if err != nil || len(keys) != 1 {
		f.Fatalf("parseJWKS: %v %v", keys, err)
	}
	a.jwks.keys, a.jwks.fetched, a.jwks.lastAttempt = keys, time.Now(), time.Now() // no fetching while fuzzing
	f.Fuzz(func(t *testing.T, msg []byte) {
		if _, res, err := a.begin(OAuthBearer, "127.0.0.1:1234").Step(context.Background(), msg); err == nil {
			t.Fatalf("a fuzzed token authenticated: %q %+v", msg, res)
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"},{"kty":"EC","crv":"P-256","x":"","y":""}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		parseJWKS(body)
	})
}

// TestJWKSRefresh: a token signed by a key added to the set since it was
// fetched (rotation) is accepted after one refetch; tokens naming unknown
// key ids cannot make the agent fetch more than once per minRefresh.
func TestJWKSRefresh(t *testing.T) {
	var mu sync.Mutex
	keys := map[string]*ecdsa.PrivateKey{}
	fetches := 0
	addKey := func(kid string) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		keys[kid] = k
		mu.Unlock()
		return k
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fetches++
		var set []map[string]string
		for kid, k := range keys {
			pub, _ := k.PublicKey.Bytes()
			set = append(set, map[string]string{"kty": "EC", "kid": kid, "crv": "P-256",
				"x": base64.RawURLEncoding.EncodeToString(pub[1:33]), "y": base64.RawURLEncoding.EncodeToString(pub[33:])})
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": set})
	}))
	defer srv.Close()
	a, err := New(Config{Mechanisms: []string{OAuthBearer}, OAuthBearer: OAuthBearerConfig{JWKSURL: srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	a.jwks.minRefresh = 0
	token := func(kid string, k *ecdsa.PrivateKey) string {
		hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": kid})
		body, _ := json.Marshal(map[string]any{"sub": "svc", "exp": time.Now().Add(time.Hour).Unix()})
		signed := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(body)
		digest := sha256.Sum256([]byte(signed))
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	ctx := context.Background()
	k1 := addKey("k1")
	if _, _, err := a.validateJWT(ctx, token("k1", k1), time.Now()); err != nil {
		t.Fatalf("k1: %v", err)
	}
	k2 := addKey("k2") // rotation
	if _, _, err := a.validateJWT(ctx, token("k2", k2), time.Now()); err != nil {
		t.Fatalf("k2 after rotation: %v", err)
	}
	if fetches != 2 {
		t.Fatalf("%d fetches, want 2", fetches)
	}
	a.jwks.minRefresh = time.Hour
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for i := range 10 {
		if _, _, err := a.validateJWT(ctx, token(fmt.Sprintf("made-up-%d", i), stranger), time.Now()); err == nil {
			t.Fatal("a token with an unknown key id was accepted")
		}
	}
	if _, _, err := a.validateJWT(ctx, token("k1", k1), time.Now()); err != nil {
		t.Fatalf("k1 after the unknown ones: %v", err)
	}
	if fetches != 2 {
		t.Errorf("unknown key ids made %d fetches, want none beyond the first 2", fetches-2)
	}
}
