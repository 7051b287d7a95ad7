package agent_test

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/auth"
	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/internal/promtest"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

var saslListener = wire.Listener{Name: "SASL_PLAINTEXT", Protocol: wire.SASLPlaintext}

const (
	alicePassword = "alice-secret"
	wrongPassword = "not-alice-secret"
)

// startSASLAgent starts an agent whose one listener is SASL_PLAINTEXT
// with PLAIN and both SCRAM mechanisms, on fresh storage of bk where
// alice has credentials for both SCRAM mechanisms (written straight into
// the store, as `silt user create --metastore-url` does).
func startSASLAgent(t *testing.T, bk backend, mutate func(*agent.Config)) *testAgent {
	t.Helper()
	s := bk.newStorage(t)
	store := s.openStore(t)
	addUser(t, store, "alice", alicePassword)
	return startAgentListener(t, store, s.bucket, func(c *agent.Config) {
		c.SASL.Mechanisms = []string{auth.Plain, "SCRAM-SHA-256", "SCRAM-SHA-512"}
		if mutate != nil {
			mutate(c)
		}
	}, saslListener)
}

func addUser(t *testing.T, store metastore.CredentialStore, user, password string) {
	t.Helper()
	var creds []metastore.ScramCredential
	for _, m := range []auth.ScramMechanism{auth.ScramSHA256, auth.ScramSHA512} {
		c, err := auth.NewCredential(user, m, password, 4096)
		if err != nil {
			t.Fatal(err)
		}
		creds = append(creds, c)
	}
	if _, err := store.AlterScramCredentials(context.Background(), nil, creds); err != nil {
		t.Fatalf("store credentials of %s: %v", user, err)
	}
}

func saslMechanism(name, user, password string) sasl.Mechanism {
	switch name {
	case auth.Plain:
		return plain.Auth{User: user, Pass: password}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: password}.AsSha256Mechanism()
	default:
		return scram.Auth{User: user, Pass: password}.AsSha512Mechanism()
	}
}

// produceConsume produces n records to a new topic and reads them back.
func produceConsume(t *testing.T, ta *testAgent, topic string, n int, opts ...kgo.Opt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := ta.client(t, append(opts, kgo.DefaultProduceTopic(topic))...)
	createTopic(t, cl, topic, 1, nil)
	for i := range n {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("%s-%d", topic, i))).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
	consumer := ta.client(t, append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	for got := 0; got < n; {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("%s-%d", topic, got); string(r.Value) != want {
				t.Fatalf("consume %s: got %q, want %q", topic, r.Value, want)
			}
			got++
		})
	}
}

// TestSASLFranzGo: franz-go produces and consumes over SASL_PLAINTEXT with
// each password mechanism.
func TestSASLFranzGo(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ta := startSASLAgent(t, bk, nil)
		for _, m := range []string{"SCRAM-SHA-512", "SCRAM-SHA-256", auth.Plain} {
			t.Run(m, func(t *testing.T) {
				produceConsume(t, ta, "franz-"+strings.ToLower(m), 20, kgo.SASL(saslMechanism(m, "alice", alicePassword)))
			})
		}
	})
}

// TestSASLKcat: librdkafka (kcat) produces and consumes over
// SASL_PLAINTEXT with each password mechanism.
func TestSASLKcat(t *testing.T) {
	t.Parallel()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not found (apt-get install kcat): %v", err)
	}
	ta := startSASLAgent(t, sqliteMem, nil)
	for _, m := range []string{"SCRAM-SHA-512", "SCRAM-SHA-256", auth.Plain} {
		t.Run(m, func(t *testing.T) {
			topic := "kcat-" + strings.ToLower(m)
			args := []string{"-b", ta.addr, "-t", topic, "-X", "security.protocol=SASL_PLAINTEXT",
				"-X", "sasl.mechanisms=" + m, "-X", "sasl.username=alice", "-X", "sasl.password=" + alicePassword}
			lines := []string{"one", "two", "three"}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			produce := exec.CommandContext(ctx, kcat, append([]string{"-P", "-X", "request.required.acks=all"}, args...)...)
			produce.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
			if out, err := produce.CombinedOutput(); err != nil {
				t.Fatalf("kcat -P: %v\n%s", err, out)
			}
			consume := exec.CommandContext(ctx, kcat, append([]string{"-C", "-o", "beginning", "-e", "-q"}, args...)...)
			var stderr strings.Builder
			consume.Stderr = &stderr
			out, err := consume.Output()
			if err != nil {
				t.Fatalf("kcat -C: %v\n%s", err, stderr.String())
			}
			if got := strings.Fields(string(out)); strings.Join(got, ",") != strings.Join(lines, ",") {
				t.Fatalf("kcat -C read %q, want %q\n%s", got, lines, stderr.String())
			}
		})
	}
	// A wrong password: kcat fails and produces nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-L", "-b", ta.addr, "-X", "security.protocol=SASL_PLAINTEXT",
		"-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=alice", "-X", "sasl.password="+wrongPassword, "-m", "10")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("kcat -L with a wrong password succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "Authentication failed") {
		t.Errorf("kcat -L with a wrong password: want an authentication failure, got:\n%s", out)
	}
}

// TestSASLOverTLS: SASL_SSL is SASL over a TLS socket; the TLS listener
// itself is the listeners work's, here a tls.Listener with a certificate
// made in the test.
func TestSASLOverTLS(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "silt-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	roots := x509.NewCertPool()
	roots.AddCert(cert)

	s := sqliteMem.newStorage(t)
	store := s.openStore(t)
	addUser(t, store, "alice", alicePassword)
	ta := startAgentListener(t, store, s.bucket, func(c *agent.Config) {
		c.SASL.Mechanisms = []string{"SCRAM-SHA-512"}
	}, wire.Listener{Name: "SASL_SSL", Protocol: wire.SASLSSL},
		func(ln net.Listener) net.Listener { return tls.NewListener(ln, serverTLS) })
	produceConsume(t, ta, "over-tls", 10, kgo.SASL(saslMechanism("SCRAM-SHA-512", "alice", alicePassword)),
		kgo.DialTLSConfig(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}))
}

// TestSASLAuthenticationFailure: a wrong password or an unknown user gets
// SASL_AUTHENTICATION_FAILED and nothing else, the failure is counted, and
// the connection is closed.
func TestSASLAuthenticationFailure(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ta := startSASLAgent(t, bk, nil)
		reg := prometheus.NewRegistry()
		if err := ta.RegisterMetrics(reg); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"SCRAM-SHA-512", "SCRAM-SHA-256", auth.Plain} {
			for _, who := range [][2]string{{"alice", wrongPassword}, {"mallory", alicePassword}} {
				cl := ta.client(t, kgo.SASL(saslMechanism(m, who[0], who[1])), kgo.RequestRetries(0))
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := kadm.NewClient(cl).ListTopics(ctx)
				cancel()
				if !errors.Is(err, kerr.SaslAuthenticationFailed) {
					t.Errorf("%s as %s: got %v, want SASL_AUTHENTICATION_FAILED", m, who[0], err)
				}
			}
			series := fmt.Sprintf(`silt_sasl_authentications_total{mechanism="%s",result="failure"}`, m)
			if got := promtest.Gather(t, reg)[series]; got < 2 {
				t.Errorf("%s = %v, want at least 2", series, got)
			}
		}

		// On the wire: the failure answer reveals nothing, then the
		// connection closes.
		c := dialRaw(t, ta.addr)
		c.handshake(t, auth.Plain, 0)
		resp := c.authenticate(t, []byte("\x00alice\x00"+wrongPassword), 1)
		if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("SaslAuthenticate with a wrong password: error %d, want %d", resp.ErrorCode, kerr.SaslAuthenticationFailed.Code)
		}
		if msg := kmsg.StringPtr(""); resp.ErrorMessage != nil {
			msg = resp.ErrorMessage
			if strings.Contains(*msg, "alice") || strings.Contains(*msg, wrongPassword) {
				t.Errorf("failure message reveals too much: %q", *msg)
			}
		}
		c.expectClosed(t)
	})
}

// TestSASLUnauthenticatedRequests: before authenticating, only ApiVersions
// and the SASL requests are served; anything else, an unknown mechanism
// or an oversized frame closes the connection.
func TestSASLUnauthenticatedRequests(t *testing.T) {
	t.Parallel()
	ta := startSASLAgent(t, sqliteMem, nil)

	c := dialRaw(t, ta.addr)
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(0)
	var avResp kmsg.ApiVersionsResponse
	c.roundTrip(t, av, &avResp)
	if avResp.ErrorCode != 0 || len(avResp.ApiKeys) == 0 {
		t.Fatalf("ApiVersions before authentication: error %d, %d keys", avResp.ErrorCode, len(avResp.ApiKeys))
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(1)
	c.send(t, md)
	c.expectClosed(t)

	// A frame claiming 100 MiB is refused on its size alone.
	c = dialRaw(t, ta.addr)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 100<<20)
	if _, err := c.nc.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	c.expectClosed(t)

	// An unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled
	// ones, then the connection closes.
	c = dialRaw(t, ta.addr)
	resp := c.handshake(t, "GSSAPI", kerr.UnsupportedSaslMechanism.Code)
	if got := strings.Join(resp.SupportedMechanisms, ","); got != "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" {
		t.Errorf("SupportedMechanisms = %s", got)
	}
	c.expectClosed(t)

	// SaslAuthenticate without a handshake.
	c = dialRaw(t, ta.addr)
	if r := c.authenticate(t, []byte("\x00alice\x00"+alicePassword), 1); r.ErrorCode != kerr.IllegalSaslState.Code {
		t.Errorf("SaslAuthenticate without SaslHandshake: error %d, want ILLEGAL_SASL_STATE", r.ErrorCode)
	}
	c.expectClosed(t)

	// And after authenticating, anything goes.
	c = dialRaw(t, ta.addr)
	c.handshake(t, auth.Plain, 0)
	if r := c.authenticate(t, []byte("\x00alice\x00"+alicePassword), 1); r.ErrorCode != 0 {
		t.Fatalf("SaslAuthenticate: error %d", r.ErrorCode)
	}
	var mdResp kmsg.MetadataResponse
	c.roundTrip(t, md, &mdResp)
	if len(mdResp.Brokers) == 0 {
		t.Fatal("Metadata after authentication lists no broker")
	}
}

// TestSASLSessionExpiry (KIP-368): with connections.max.reauth.ms set, a
// v1 SaslAuthenticate answers the session lifetime; re-authenticating on
// the live connection extends it; once it has passed, a request other than
// the SASL ones closes the connection. franz-go re-authenticates by
// itself, so a long producer and consumer keep working.
func TestSASLSessionExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		const lifetime = 500 * time.Millisecond
		ta := startSASLAgent(t, bk, func(c *agent.Config) { c.SASL.MaxReauth = lifetime })
		reg := prometheus.NewRegistry()
		if err := ta.RegisterMetrics(reg); err != nil {
			t.Fatal(err)
		}

		c := dialRaw(t, ta.addr)
		c.handshake(t, auth.Plain, 0)
		r := c.authenticate(t, []byte("\x00alice\x00"+alicePassword), 1)
		if r.ErrorCode != 0 || r.SessionLifetimeMillis != lifetime.Milliseconds() {
			t.Fatalf("SaslAuthenticate v1: error %d, session lifetime %dms; want 0, %dms", r.ErrorCode, r.SessionLifetimeMillis, lifetime.Milliseconds())
		}
		// Re-authentication on the same connection, as the same user.
		c.handshake(t, auth.Plain, 0)
		if r := c.authenticate(t, []byte("\x00alice\x00"+alicePassword), 1); r.ErrorCode != 0 {
			t.Fatalf("re-authentication: error %d", r.ErrorCode)
		}
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(1)
		// Requests are served until the session expires, then the
		// connection is closed.
		poll.Until(t, "the expired session's connection to close", func() bool {
			c.send(t, md)
			return c.readOrClosed(t)
		})

		// A producer and a consumer live through many sessions.
		mech := kgo.SASL(saslMechanism("SCRAM-SHA-512", "alice", alicePassword))
		producer := ta.client(t, mech, kgo.DefaultProduceTopic("long"))
		createTopic(t, producer, "long", 1, nil)
		consumer := ta.client(t, mech, kgo.ConsumeTopics("long"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		series := `silt_sasl_authentications_total{mechanism="SCRAM-SHA-512",result="success"}`
		killed := `silt_sasl_expired_connections_killed_total`
		if got := promtest.Gather(t, reg)[killed]; got != 1 {
			t.Fatalf("%s = %v after the raw connection's expiry, want 1", killed, got)
		}
		for i := 0; promtest.Gather(t, reg)[series] < 12; i++ {
			want := fmt.Sprintf("r%d", i)
			if err := producer.ProduceSync(ctx, kgo.StringRecord(want)).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", want, err)
			}
			var got string
			for got == "" {
				fs := consumer.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatalf("consume %s: %v", want, err)
				}
				fs.EachRecord(func(r *kgo.Record) { got = string(r.Value) })
			}
			if got != want {
				t.Fatalf("consumed %s, want %s", got, want)
			}
		}
		// The clients re-authenticated on their live connections: none
		// was cut off for an expired session.
		if got := promtest.Gather(t, reg)[killed]; got != 1 {
			t.Errorf("%s = %v, want still 1: a client connection outlived its session", killed, got)
		}
	})
}

// TestSASLOAuthBearer: OAUTHBEARER with JWTs signed by keys a JWKS URL
// serves (RS256 and ES256): valid tokens produce and consume; an expired
// token, a wrong audience or issuer, or an unknown key get
// SASL_AUTHENTICATION_FAILED.
func TestSASLOAuthBearer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			ecPub, _ := ecKey.PublicKey.Bytes() // 0x04 || X || Y
			json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{
				{"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
					"n": b64url(rsaKey.N.Bytes()), "e": b64url(big.NewInt(int64(rsaKey.E)).Bytes())},
				{"kty": "EC", "kid": "ec-1", "use": "sig", "crv": "P-256", "x": b64url(ecPub[1:33]), "y": b64url(ecPub[33:])},
			}})
		}))
		t.Cleanup(jwks.Close)
		s := bk.newStorage(t)
		ta := startAgentListener(t, s.openStore(t), s.bucket, func(c *agent.Config) {
			c.SASL.Mechanisms = []string{auth.OAuthBearer}
			c.SASL.OAuthBearer = auth.OAuthBearerConfig{JWKSURL: jwks.URL, Issuer: "https://issuer.test", Audience: "silt"}
		}, saslListener)

		claims := func(mod func(map[string]any)) map[string]any {
			c := map[string]any{"sub": "svc-orders", "iss": "https://issuer.test", "aud": []string{"other", "silt"},
				"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
			if mod != nil {
				mod(c)
			}
			return c
		}
		rs256 := func(c map[string]any) string { return signJWT(t, "RS256", "rsa-1", rsaKey, c) }
		es256 := func(c map[string]any) string { return signJWT(t, "ES256", "ec-1", ecKey, c) }
		bearer := func(token string) kgo.Opt { return kgo.SASL(oauth.Auth{Token: token}.AsMechanism()) }

		produceConsume(t, ta, "oauth-rs256", 10, bearer(rs256(claims(nil))))
		produceConsume(t, ta, "oauth-es256", 10, bearer(es256(claims(nil))))

		// The session lasts as long as the token.
		c := dialRaw(t, ta.addr)
		c.handshake(t, auth.OAuthBearer, 0)
		r := c.authenticate(t, []byte("n,,\x01auth=Bearer "+rs256(claims(nil))+"\x01\x01"), 1)
		if r.ErrorCode != 0 || r.SessionLifetimeMillis <= 0 || r.SessionLifetimeMillis > time.Hour.Milliseconds() {
			t.Fatalf("OAUTHBEARER SaslAuthenticate: error %d, session lifetime %dms; want 0 and at most an hour", r.ErrorCode, r.SessionLifetimeMillis)
		}

		otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
		for name, token := range map[string]string{
			"expired":        rs256(claims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })),
			"wrong audience": es256(claims(func(c map[string]any) { c["aud"] = "kafka" })),
			"wrong issuer":   rs256(claims(func(c map[string]any) { c["iss"] = "https://evil.test" })),
			"not yet valid":  rs256(claims(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() })),
			"unknown key":    signJWT(t, "RS256", "rsa-2", otherKey, claims(nil)),
			"wrong key":      signJWT(t, "RS256", "rsa-1", otherKey, claims(nil)),
			"not a JWT":      "abc.def",
		} {
			cl := ta.client(t, bearer(token), kgo.RequestRetries(0))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := kadm.NewClient(cl).ListTopics(ctx)
			cancel()
			if !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Errorf("%s token: got %v, want SASL_AUTHENTICATION_FAILED", name, err)
			}
		}
	})
}

// TestScramCredentialAdmin: DescribeUserScramCredentials and
// AlterUserScramCredentials with Kafka's semantics, and a change applies
// to the next authentication at once.
func TestScramCredentialAdmin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ta := startSASLAgent(t, bk, nil)
		adm := kadm.NewClient(ta.client(t, kgo.SASL(saslMechanism("SCRAM-SHA-512", "alice", alicePassword))))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()

		altered, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
			{User: "bob", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "bob-secret"},
		})
		if err != nil || altered["bob"].Err != nil {
			t.Fatalf("upsert bob: %v %v", err, altered["bob"].Err)
		}
		// Iterations out of range (kadm refuses them itself, so by hand).
		ireq := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		for user, iterations := range map[string]int32{"weak": 1000, "greedy": 20000} {
			up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
			up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = user, 2, iterations, []byte("salt"), []byte("salted")
			ireq.Upsertions = append(ireq.Upsertions, up)
		}
		iresp, err := ireq.RequestWith(ctx, ta.client(t, kgo.SASL(saslMechanism("SCRAM-SHA-512", "alice", alicePassword))))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range iresp.Results {
			if r.ErrorCode != kerr.UnacceptableCredential.Code {
				t.Errorf("upsert %s with iterations out of range: error %d, want UNACCEPTABLE_CREDENTIAL", r.User, r.ErrorCode)
			}
		}
		produceConsume(t, ta, "bob-scram", 3, kgo.SASL(saslMechanism("SCRAM-SHA-256", "bob", "bob-secret")))
		produceConsume(t, ta, "bob-plain", 3, kgo.SASL(saslMechanism(auth.Plain, "bob", "bob-secret")))

		described, err := adm.DescribeUserSCRAMs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d := described["bob"]; d.Err != nil || len(d.CredInfos) != 1 || d.CredInfos[0].Mechanism != kadm.ScramSha256 || d.CredInfos[0].Iterations != 4096 {
			t.Errorf("describe bob: %+v", d)
		}
		if d := described["alice"]; d.Err != nil || len(d.CredInfos) != 2 {
			t.Errorf("describe alice: %+v", d)
		}
		if _, ok := described["weak"]; ok {
			t.Error("a refused upsert was stored")
		}

		// Describing: unknown users and users named twice.
		dreq := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
		for _, u := range []string{"alice", "nobody", "bob", "bob"} {
			ru := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
			ru.Name = u
			dreq.Users = append(dreq.Users, ru)
		}
		dresp, err := dreq.RequestWith(ctx, ta.client(t, kgo.SASL(saslMechanism("SCRAM-SHA-512", "alice", alicePassword))))
		if err != nil {
			t.Fatal(err)
		}
		codes := map[string]int16{}
		for _, r := range dresp.Results {
			codes[r.User] = r.ErrorCode
		}
		if len(dresp.Results) != 3 || codes["alice"] != 0 || codes["nobody"] != kerr.ResourceNotFound.Code || codes["bob"] != kerr.DuplicateResource.Code {
			t.Errorf("describe alice, nobody, bob, bob: %v (%d results)", codes, len(dresp.Results))
		}

		// Altering: a user twice, an unknown mechanism, deleting what is
		// not there; then deleting bob's credential locks bob out at once.
		areq := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		del := func(user string, mech int8) {
			d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
			d.Name, d.Mechanism = user, mech
			areq.Deletions = append(areq.Deletions, d)
		}
		del("bob", 1)
		del("nobody", 2)
		del("carol", 9)
		del("", 1)
		up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = "alice", 1, 4096, []byte("salt"), []byte("salted")
		areq.Upsertions = append(areq.Upsertions, up)
		up2 := up
		up2.Mechanism = 2
		areq.Upsertions = append(areq.Upsertions, up2) // alice twice
		aresp, err := areq.RequestWith(ctx, ta.client(t, kgo.SASL(saslMechanism("SCRAM-SHA-512", "alice", alicePassword))))
		if err != nil {
			t.Fatal(err)
		}
		codes = map[string]int16{}
		for _, r := range aresp.Results {
			codes[r.User] = r.ErrorCode
		}
		want := map[string]int16{"bob": 0, "nobody": kerr.ResourceNotFound.Code, "carol": kerr.UnsupportedSaslMechanism.Code,
			"": kerr.UnacceptableCredential.Code, "alice": kerr.DuplicateResource.Code}
		if fmt.Sprint(codes) != fmt.Sprint(want) || len(aresp.Results) != len(want) {
			t.Errorf("alter results %v, want %v", codes, want)
		}
		cl := ta.client(t, kgo.SASL(saslMechanism("SCRAM-SHA-256", "bob", "bob-secret")), kgo.RequestRetries(0))
		if _, err := kadm.NewClient(cl).ListTopics(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("bob after his credential was deleted: %v, want SASL_AUTHENTICATION_FAILED", err)
		}
		// alice's credentials were not touched by the refused request.
		produceConsume(t, ta, "alice-after", 1, kgo.SASL(saslMechanism("SCRAM-SHA-256", "alice", alicePassword)))
	})
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signJWT builds a compact JWS of claims signed with key (RS256 or ES256).
func signJWT(t *testing.T, alg, kid string, key crypto.Signer, claims map[string]any) string {
	t.Helper()
	hdr, _ := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"})
	body, _ := json.Marshal(claims)
	signed := b64url(hdr) + "." + b64url(body)
	digest := sha256.Sum256([]byte(signed))
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		s, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = s
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return signed + "." + b64url(sig)
}

// rawConn speaks the Kafka protocol by hand, to see exactly what the
// broker answers and when it closes.
type rawConn struct {
	nc   net.Conn
	br   *bufio.Reader
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{nc: nc, br: bufio.NewReader(nc)}
}

// send writes req with a request header v1 (the versions used here are
// not flexible).
func (c *rawConn) send(t *testing.T, req kmsg.Request) {
	t.Helper()
	if req.IsFlexible() {
		t.Fatalf("rawConn sends only non-flexible versions")
	}
	c.corr++
	b := make([]byte, 4, 64)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(c.corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(b); err != nil && !errors.Is(err, net.ErrClosed) {
		// A write to a connection the broker closed may fail; the read
		// that follows tells.
		t.Logf("write: %v", err)
	}
}

// read reads one response frame into resp (whose version must be set).
func (c *rawConn) read(t *testing.T, resp kmsg.Response) {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		t.Fatalf("read response: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.br, b); err != nil {
		t.Fatalf("read response: %v", err)
	}
	if corr := int32(binary.BigEndian.Uint32(b)); corr != c.corr {
		t.Fatalf("correlation id %d, want %d", corr, c.corr)
	}
	if err := resp.ReadFrom(b[4:]); err != nil {
		t.Fatalf("decode %s response: %v", kmsg.NameForKey(resp.Key()), err)
	}
}

func (c *rawConn) roundTrip(t *testing.T, req kmsg.Request, resp kmsg.Response) {
	t.Helper()
	resp.SetVersion(req.GetVersion())
	c.send(t, req)
	c.read(t, resp)
}

// readOrClosed reads one response and reports false, or reports true if
// the broker closed the connection instead.
func (c *rawConn) readOrClosed(t *testing.T) bool {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
			return true
		}
		t.Fatalf("read response: %v", err)
	}
	if _, err := io.CopyN(io.Discard, c.br, int64(binary.BigEndian.Uint32(size[:]))); err != nil {
		t.Fatalf("read response: %v", err)
	}
	return false
}

// expectClosed checks that the broker closes the connection without
// sending anything more.
func (c *rawConn) expectClosed(t *testing.T) {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(c.br)
	if len(b) > 0 {
		t.Fatalf("broker sent %d more bytes before closing", len(b))
	}
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("waiting for the broker to close: %v", err)
	}
}

func (c *rawConn) handshake(t *testing.T, mechanism string, wantErr int16) *kmsg.SASLHandshakeResponse {
	t.Helper()
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.SetVersion(1)
	req.Mechanism = mechanism
	var resp kmsg.SASLHandshakeResponse
	c.roundTrip(t, req, &resp)
	if resp.ErrorCode != wantErr {
		t.Fatalf("SaslHandshake %s: error %d, want %d", mechanism, resp.ErrorCode, wantErr)
	}
	return &resp
}

func (c *rawConn) authenticate(t *testing.T, msg []byte, version int16) *kmsg.SASLAuthenticateResponse {
	t.Helper()
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.SetVersion(version)
	req.SASLAuthBytes = msg
	var resp kmsg.SASLAuthenticateResponse
	c.roundTrip(t, req, &resp)
	return &resp
}

// TestScramCredentialAdminAuthorized: with authorizer=acl, the principal
// SASL established is what is authorized: DescribeUserScramCredentials
// needs DESCRIBE on CLUSTER and AlterUserScramCredentials ALTER on CLUSTER;
// a super user has both.
func TestScramCredentialAdminAuthorized(t *testing.T) {
	t.Parallel()
	ta := startSASLAgent(t, sqliteMem, func(c *agent.Config) {
		c.Authorizer = agent.AuthorizerACL
		c.SuperUsers = []string{"User:alice"}
	})
	addUser(t, ta.store, "bob", "bob-secret")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := ta.client(t, kgo.SASL(saslMechanism("SCRAM-SHA-512", "alice", alicePassword)))
	bob := ta.client(t, kgo.SASL(saslMechanism("SCRAM-SHA-512", "bob", "bob-secret")))

	dreq := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	dresp, err := dreq.RequestWith(ctx, bob)
	if err != nil || dresp.ErrorCode != kerr.ClusterAuthorizationFailed.Code || len(dresp.Results) != 0 {
		t.Errorf("describe as bob: %v, error %d, %d results", err, dresp.ErrorCode, len(dresp.Results))
	}
	areq := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	d.Name, d.Mechanism = "alice", 2
	areq.Deletions = append(areq.Deletions, d)
	aresp, err := areq.RequestWith(ctx, bob)
	if err != nil || len(aresp.Results) != 1 || aresp.Results[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("delete alice as bob: %v %+v", err, aresp)
	}
	dresp, err = dreq.RequestWith(ctx, alice)
	if err != nil || dresp.ErrorCode != 0 || len(dresp.Results) != 2 {
		t.Errorf("describe as alice (super user): %v, error %d, %d results", err, dresp.ErrorCode, len(dresp.Results))
	}
}
