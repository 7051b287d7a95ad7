package main

// Produce throughput over SASL_SSL: the agents we start serve a SASL_SSL
// listener (SCRAM-SHA-512, a certificate from internal/testcerts) beside
// their PLAINTEXT one, and the max-throughput run is repeated through it
// with the same producers, records and duration. The ratio of the two is
// what TLS and SASL cost on the produce path.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/siltstream/silt/internal/testcerts"
)

// saslSSLMechanism is the only mechanism the bench's listener offers.
const saslSSLMechanism = "SCRAM-SHA-512"

// saslSSLSetup is what the agents' SASL_SSL listener needs and what a
// client needs to reach it.
type saslSSLSetup struct {
	certFile, keyFile string
	clientTLS         *tls.Config // trusts the CA that signed certFile
	user, password    string
}

// newSASLSSLSetup writes a CA and a loopback server certificate to dir and
// picks the SCRAM user's password.
func newSASLSSLSetup(dir string) (*saslSSLSetup, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := testcerts.NewCAIn(dir, "silt-bench CA")
	if err != nil {
		return nil, fmt.Errorf("make test CA: %w", err)
	}
	leaf, err := ca.IssueServer("agent")
	if err != nil {
		return nil, fmt.Errorf("issue agent certificate: %w", err)
	}
	pw := make([]byte, 16)
	rand.Read(pw)
	return &saslSSLSetup{
		certFile: leaf.CertFile, keyFile: leaf.KeyFile,
		clientTLS: &tls.Config{RootCAs: ca.Pool()},
		user:      "silt-bench", password: hex.EncodeToString(pw),
	}, nil
}

// listenerArgs are the agent flags for a PLAINTEXT listener on plainAddr
// and a SASL_SSL one on tlsAddr.
func (s *saslSSLSetup) listenerArgs(plainAddr, tlsAddr string) []string {
	return []string{
		"--listeners", "PLAINTEXT://" + plainAddr + ",SASL_SSL://" + tlsAddr,
		"--tls-cert-file", s.certFile,
		"--tls-key-file", s.keyFile,
		"--sasl-mechanisms", saslSSLMechanism,
	}
}

// createUser stores the SCRAM credential the way an operator bootstraps
// one: `silt user create` straight in the metastore.
func (s *saslSSLSetup) createUser(ctx context.Context, bin, dbURL string) error {
	cmd := exec.CommandContext(ctx, bin, "user", "create", s.user,
		"--mechanism", saslSSLMechanism, "--metastore-url", dbURL)
	cmd.Env = append(os.Environ(), "SILT_USER_PASSWORD="+s.password)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("silt user create %s: %w\n%s", s.user, err, out)
	}
	return nil
}

// clientOpts make a kgo client speak TLS and SCRAM-SHA-512 to the
// listener.
func (s *saslSSLSetup) clientOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.DialTLSConfig(s.clientTLS.Clone()),
		kgo.SASL(scram.Auth{User: s.user, Pass: s.password}.AsSha512Mechanism()),
	}
}

// tlsSessionHook records the version and cipher suite of the TLS
// connections kgo made, for the report.
type tlsSessionHook struct {
	mu       sync.Mutex
	sessions map[string]int // "TLS 1.3 TLS_AES_128_GCM_SHA256" → connections
}

func (h *tlsSessionHook) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, conn net.Conn, err error) {
	c, ok := conn.(*tls.Conn)
	if err != nil || !ok {
		return
	}
	cs := c.ConnectionState()
	if !cs.HandshakeComplete {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions == nil {
		h.sessions = map[string]int{}
	}
	h.sessions[tls.VersionName(cs.Version)+" "+tls.CipherSuiteName(cs.CipherSuite)]++
}

func (h *tlsSessionHook) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.sessions) == 0 {
		return "TLS parameters unknown"
	}
	var out []string
	for s, n := range h.sessions {
		out = append(out, fmt.Sprintf("%s (%d connections)", s, n))
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// saslSSLResult is the max-throughput run over SASL_SSL.
type saslSSLResult struct {
	throughputResult
	topic string
	tls   string // negotiated version and cipher suite
}

// measureThroughputSASLSSL repeats measureThroughput against the agents'
// SASL_SSL listeners, on a fresh topic like the plaintext run's.
func measureThroughputSASLSSL(ctx context.Context, env *benchEnv, o options) (saslSSLResult, error) {
	res := saslSSLResult{topic: o.topic + "-sasl-ssl"}
	if err := createTopic(ctx, env.brokers, res.topic, o.partitions); err != nil {
		return res, err
	}
	var brokers []string
	for _, a := range env.agents {
		brokers = append(brokers, a.saslSSLAddr)
	}
	hook := &tlsSessionHook{}
	r, err := runBlast(ctx, brokers, o, blast{
		topic: res.topic, zone: env.writerZone, producers: o.producers, duration: o.duration,
		conn: env.saslSSL.clientOpts(), opts: []kgo.Opt{kgo.WithHooks(hook)},
	})
	res.throughputResult, res.tls = r.throughputResult, hook.String()
	return res, err
}
