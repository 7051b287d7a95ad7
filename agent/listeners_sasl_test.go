package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/auth"
	"github.com/siltstream/silt/wire"
)

// TestConfiguredSASLSSLListener: a SASL_SSL listener configured the way
// silt agent configures it (listeners, tls.cert.file, tls.key.file,
// sasl.mechanisms), next to a loopback PLAINTEXT listener: each advertises
// its own address; over SASL_SSL, franz-go and kcat produce and consume
// with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN, franz-go also with
// OAUTHBEARER (a token signed by a test JWKS); a wrong password or an
// expired token gets SASL_AUTHENTICATION_FAILED.
func TestConfiguredSASLSSLListener(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not found (apt-get install kcat): %v", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
			"n": b64url(key.N.Bytes()), "e": b64url(big.NewInt(int64(key.E)).Bytes())}}})
	}))
	t.Cleanup(jwks.Close)
	token := func(exp time.Time) string {
		return signJWT(t, "RS256", "k1", key, map[string]any{"sub": "svc", "iss": "https://issuer.test", "aud": "silt",
			"iat": time.Now().Unix(), "exp": exp.Unix()})
	}
	passwords := []string{"SCRAM-SHA-512", "SCRAM-SHA-256", auth.Plain}

	forEachBackend(t, func(t *testing.T, bk backend) {
		f := newTLSFixture(t)
		s := bk.newStorage(t)
		store := s.openStore(t)
		addUser(t, store, "alice", alicePassword)
		ta := startAgentOn(t, store, s.bucket, func(c *agent.Config) {
			c.Listeners = []agent.Listener{
				{Name: "SASL_SSL", Protocol: wire.SASLSSL, Listen: "127.0.0.1:0"},
				{Name: "PLAINTEXT", Protocol: wire.Plaintext, Listen: "127.0.0.1:0"},
			}
			c.TLS = f.agentTLS("none")
			c.SASL.Mechanisms = append(slices.Clone(passwords), auth.OAuthBearer)
			c.SASL.OAuthBearer = auth.OAuthBearerConfig{JWKSURL: jwks.URL, Issuer: "https://issuer.test", Audience: "silt"}
		})
		addr := listenerAddr(t, ta, "SASL_SSL")
		overTLS := kgo.DialTLSConfig(f.clientTLS(nil))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()

		// Each listener tells its clients its own address.
		for _, lc := range []struct {
			name string
			opts []kgo.Opt
		}{
			{"SASL_SSL", []kgo.Opt{overTLS, kgo.SASL(saslMechanism("SCRAM-SHA-512", "alice", alicePassword))}},
			{"PLAINTEXT", nil},
		} {
			want := listenerAddr(t, ta, lc.name)
			md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, newClient(t, want, nil, lc.opts...))
			if err != nil {
				t.Fatalf("%s: Metadata: %v", lc.name, err)
			}
			if len(md.Brokers) != 1 || net.JoinHostPort(md.Brokers[0].Host, strconv.Itoa(int(md.Brokers[0].Port))) != want {
				t.Errorf("%s: Metadata brokers %+v, want one at %s", lc.name, md.Brokers, want)
			}
		}

		for _, m := range passwords {
			topic := "franz-" + strings.ToLower(m)
			produceConsume(t, ta, topic, 10, overTLS, kgo.SASL(saslMechanism(m, "alice", alicePassword)))
		}
		bearer := func(tok string) kgo.Opt { return kgo.SASL(oauth.Auth{Token: tok}.AsMechanism()) }
		produceConsume(t, ta, "franz-oauthbearer", 10, overTLS, bearer(token(time.Now().Add(time.Hour))))

		refused := []struct {
			what string
			opt  kgo.Opt
		}{
			{"a wrong password", kgo.SASL(saslMechanism("SCRAM-SHA-512", "alice", wrongPassword))},
			{"an expired token", bearer(token(time.Now().Add(-time.Hour)))},
		}
		for _, r := range refused {
			cl := newClient(t, addr, nil, overTLS, r.opt, kgo.RequestRetries(0))
			if _, err := kadm.NewClient(cl).ListTopics(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Errorf("%s over SASL_SSL: got %v, want SASL_AUTHENTICATION_FAILED", r.what, err)
			}
		}

		for _, m := range passwords {
			topic := "kcat-" + strings.ToLower(m)
			common := []string{"-b", addr, "-X", "security.protocol=sasl_ssl", "-X", "ssl.ca.location=" + f.ca.CertFile,
				"-X", "sasl.mechanisms=" + m, "-X", "sasl.username=alice", "-X", "sasl.password=" + alicePassword}
			lines := []string{"one", "two", "three"}
			produce := exec.CommandContext(ctx, kcat, append(common, "-P", "-t", topic, "-X", "request.required.acks=all")...)
			produce.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
			if out, err := produce.CombinedOutput(); err != nil {
				t.Fatalf("kcat -P over SASL_SSL with %s: %v\n%s", m, err, out)
			}
			consume := exec.CommandContext(ctx, kcat, append(common, "-C", "-t", topic, "-o", "beginning", "-e", "-q")...)
			var errb bytes.Buffer
			consume.Stderr = &errb
			out, err := consume.Output()
			if err != nil {
				t.Fatalf("kcat -C over SASL_SSL with %s: %v\n%s", m, err, errb.String())
			}
			if got := strings.Fields(string(out)); !slices.Equal(got, lines) {
				t.Fatalf("kcat with %s consumed %v, want %v", m, got, lines)
			}
		}
	})
}
