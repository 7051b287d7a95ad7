package agent_test

import (
	"bytes"
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/wire"
)

// TestConfiguredSASLSSLListener: a SASL_SSL listener configured the way
// silt agent configures it (listeners, tls.cert.file, tls.key.file,
// sasl.mechanisms) serves franz-go and kcat with SCRAM-SHA-512 over TLS,
// next to a loopback PLAINTEXT listener.
func TestConfiguredSASLSSLListener(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not found (apt-get install kcat): %v", err)
	}
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
			c.SASL.Mechanisms = []string{"SCRAM-SHA-512"}
		})
		addr := listenerAddr(t, ta, "SASL_SSL")
		produceConsume(t, ta, "franz-sasl-ssl", 10,
			kgo.SASL(saslMechanism("SCRAM-SHA-512", "alice", alicePassword)), kgo.DialTLSConfig(f.clientTLS(nil)))

		common := []string{"-b", addr, "-X", "security.protocol=sasl_ssl", "-X", "ssl.ca.location=" + f.ca.CertFile,
			"-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=alice", "-X", "sasl.password=" + alicePassword}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		lines := []string{"one", "two", "three"}
		produce := exec.CommandContext(ctx, kcat, append(common, "-P", "-t", "kcat-sasl-ssl", "-X", "request.required.acks=all")...)
		produce.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
		if out, err := produce.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P over SASL_SSL: %v\n%s", err, out)
		}
		consume := exec.CommandContext(ctx, kcat, append(common, "-C", "-t", "kcat-sasl-ssl", "-o", "beginning", "-e", "-q")...)
		var errb bytes.Buffer
		consume.Stderr = &errb
		out, err := consume.Output()
		if err != nil {
			t.Fatalf("kcat -C over SASL_SSL: %v\n%s", err, errb.String())
		}
		if got := strings.Fields(string(out)); !slices.Equal(got, lines) {
			t.Fatalf("kcat consumed %v, want %v", got, lines)
		}
	})
}
