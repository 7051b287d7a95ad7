package agent_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/internal/testcerts"
	"github.com/siltstream/silt/wire"
)

// bindTestListeners binds the listeners a test configured (port 0 picks a
// free port, advertised as bound) and returns them with the first one's
// address; without configured listeners it is ln, already bound for
// cfg.Listen.
func bindTestListeners(t *testing.T, cfg *agent.Config, ln net.Listener) ([]net.Listener, string) {
	t.Helper()
	if len(cfg.Listeners) == 0 {
		return []net.Listener{ln}, ln.Addr().String()
	}
	ln.Close()
	var lns []net.Listener
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		bound, err := net.Listen("tcp", l.Listen)
		if err != nil {
			t.Fatalf("listen %s: %v", l.Name, err)
		}
		t.Cleanup(func() { bound.Close() })
		l.Listen = bound.Addr().String()
		if l.Advertise == "" {
			l.Advertise = l.Listen
		} else if host, port, _ := net.SplitHostPort(l.Advertise); port == "0" {
			l.Advertise = net.JoinHostPort(host, strconv.Itoa(bound.Addr().(*net.TCPAddr).Port))
		}
		lns = append(lns, bound)
	}
	return lns, lns[0].Addr().String()
}

// tlsFixture is a CA, an agent certificate in files an operator would
// rotate, and a client certificate.
type tlsFixture struct {
	t                 *testing.T
	ca                *testcerts.CA
	certFile, keyFile string
	server            *testcerts.Leaf
	alice             *testcerts.Leaf // CN=Alice,OU=clients,O=Silt tests
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	ca := testcerts.NewCA(t, "silt test CA")
	dir := t.TempDir()
	f := &tlsFixture{
		t:        t,
		ca:       ca,
		certFile: filepath.Join(dir, "tls.crt"),
		keyFile:  filepath.Join(dir, "tls.key"),
		server:   ca.Server(t, "agent"),
		alice:    ca.Client(t, "alice", pkix.Name{CommonName: "Alice", OrganizationalUnit: []string{"clients"}, Organization: []string{"Silt tests"}}),
	}
	f.server.WriteTo(t, f.certFile, f.keyFile)
	return f
}

// aliceRule maps CN=<name>,OU=clients,… to <name> in lower case.
const aliceRule = `RULE:^CN=([^,]*),OU=clients,.*$/$1/L,DEFAULT`

func (f *tlsFixture) agentTLS(clientAuth string) agent.TLSConfig {
	return agent.TLSConfig{
		CertFile: f.certFile, KeyFile: f.keyFile, ClientCAFile: f.ca.CertFile,
		ClientAuth: clientAuth, PrincipalMappingRules: aliceRule,
	}
}

// clientTLS trusts the test CA and presents leaf, if any.
func (f *tlsFixture) clientTLS(leaf *testcerts.Leaf) *tls.Config { return f.ca.ClientTLS(f.t, leaf) }

// principalLog records the principals the agent logs for TLS clients.
type principalLog struct {
	mu         sync.Mutex
	principals []string
}

func (p *principalLog) Enabled(context.Context, slog.Level) bool { return true }
func (p *principalLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "principal" {
			p.mu.Lock()
			p.principals = append(p.principals, a.Value.String())
			p.mu.Unlock()
		}
		return true
	})
	return nil
}
func (p *principalLog) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *principalLog) WithGroup(string) slog.Handler      { return p }

func (p *principalLog) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.principals, ", ")
}

func (p *principalLog) seen(principal string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.principals, principal)
}

// listenerAddr is the advertised address of ta's listener name.
func listenerAddr(t *testing.T, ta *testAgent, name string) string {
	t.Helper()
	for _, l := range ta.Listeners() {
		if l.Name == name {
			return l.Advertise
		}
	}
	t.Fatalf("agent has no listener %s", name)
	return ""
}

func newClient(t *testing.T, addr string, conf *tls.Config, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{kgo.SeedBrokers(addr), kgo.RetryTimeout(5 * time.Second)}
	if conf != nil {
		base = append(base, kgo.DialTLSConfig(conf))
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// tlsProduceConsume produces n records to topic through cl and reads them
// back.
func tlsProduceConsume(t *testing.T, addr string, conf *tls.Config, topic string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := newClient(t, addr, conf, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	for i := range n {
		if err := p.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("r%d", i))).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", addr, err)
		}
	}
	c := newClient(t, addr, conf, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < n {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d from %s: %v", got, n, addr, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("r%d", got); string(r.Value) != want {
				t.Fatalf("record %d = %q, want %q", got, r.Value, want)
			}
			got++
		})
	}
}

// TestSSLClientCertificate: franz-go produces and consumes over an SSL
// listener with a client certificate, which maps to the principal the
// rules say, while a PLAINTEXT listener serves too; with
// tls.client.auth=required a client without a certificate is refused.
func TestSSLClientCertificate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		f := newTLSFixture(t)
		logs := &principalLog{}
		ta := startAgent(t, bk, func(c *agent.Config) {
			c.Listeners = []agent.Listener{
				{Name: "SSL", Protocol: wire.SSL, Listen: "127.0.0.1:0"},
				{Name: "PLAINTEXT", Protocol: wire.Plaintext, Listen: "127.0.0.1:0"},
			}
			c.TLS = f.agentTLS("required")
			c.Logger = slog.New(logs)
		})
		ssl := listenerAddr(t, ta, "SSL")
		tlsProduceConsume(t, ssl, f.clientTLS(f.alice), "over-ssl", 20)
		if !logs.seen("User:alice") {
			t.Errorf("the client certificate did not map to User:alice; principals seen: %v", logs)
		}
		tlsProduceConsume(t, listenerAddr(t, ta, "PLAINTEXT"), nil, "over-plaintext", 5)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		anon := newClient(t, ssl, f.clientTLS(nil), kgo.RetryTimeout(time.Second))
		if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, anon); err == nil {
			t.Errorf("tls.client.auth=required served a client without a certificate")
		}
	})
}

// TestListenersAdvertiseTheirOwnAddresses: Metadata, FindCoordinator and
// DescribeCluster answer each client with the addresses of the listener it
// came in on.
func TestListenersAdvertiseTheirOwnAddresses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		f := newTLSFixture(t)
		ta := startAgent(t, bk, func(c *agent.Config) {
			c.Listeners = []agent.Listener{
				{Name: "PLAINTEXT", Protocol: wire.Plaintext, Listen: "127.0.0.1:0"},
				// Advertised by name: the certificate covers localhost.
				{Name: "EXTERNAL", Protocol: wire.SSL, Listen: "127.0.0.1:0", Advertise: "localhost:0"},
			}
			c.TLS = f.agentTLS("none")
		})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, lc := range []struct {
			name string
			conf *tls.Config
		}{{"PLAINTEXT", nil}, {"EXTERNAL", f.clientTLS(nil)}} {
			want := listenerAddr(t, ta, lc.name)
			cl := newClient(t, want, lc.conf)
			md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
			if err != nil {
				t.Fatalf("%s: Metadata: %v", lc.name, err)
			}
			if len(md.Brokers) != 1 || net.JoinHostPort(md.Brokers[0].Host, strconv.Itoa(int(md.Brokers[0].Port))) != want {
				t.Errorf("%s: Metadata brokers %+v, want one at %s", lc.name, md.Brokers, want)
			}
			fc := kmsg.NewPtrFindCoordinatorRequest()
			fc.CoordinatorKey = "g"
			fcr, err := fc.RequestWith(ctx, cl)
			if err != nil || fcr.ErrorCode != 0 {
				t.Fatalf("%s: FindCoordinator: %+v %v", lc.name, fcr, err)
			}
			if got := net.JoinHostPort(fcr.Host, strconv.Itoa(int(fcr.Port))); got != want {
				t.Errorf("%s: FindCoordinator answered %s, want %s", lc.name, got, want)
			}
			dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
			if err != nil || len(dc.Brokers) != 1 {
				t.Fatalf("%s: DescribeCluster: %+v %v", lc.name, dc, err)
			}
			if got := net.JoinHostPort(dc.Brokers[0].Host, strconv.Itoa(int(dc.Brokers[0].Port))); got != want {
				t.Errorf("%s: DescribeCluster answered %s, want %s", lc.name, got, want)
			}
		}
	})
}

// TestCertificateRotation: certificate files replaced on disk are served
// to new connections without a restart.
func TestCertificateRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		f := newTLSFixture(t)
		ta := startAgent(t, bk, func(c *agent.Config) {
			c.Listeners = []agent.Listener{{Name: "SSL", Protocol: wire.SSL, Listen: "127.0.0.1:0"}}
			c.TLS = f.agentTLS("request")
		})
		addr := listenerAddr(t, ta, "SSL")
		served := func() string {
			conf := f.clientTLS(nil)
			conf.ServerName = "localhost"
			c, err := tls.Dial("tcp", addr, conf)
			if err != nil {
				t.Fatalf("dial %s: %v", addr, err)
			}
			defer c.Close()
			return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
		}
		if got := served(); got != f.server.Cert.SerialNumber.String() {
			t.Fatalf("agent serves certificate %s, want the first one", got)
		}
		old := newClient(t, addr, f.clientTLS(f.alice))
		tlsProduceConsume(t, addr, f.clientTLS(f.alice), "before-rotation", 1)

		next := f.ca.Server(t, "agent-rotated")
		next.WriteTo(t, f.certFile, f.keyFile)
		poll.Until(t, "new connections to get the rotated certificate", func() bool {
			return served() == next.Cert.SerialNumber.String()
		})
		tlsProduceConsume(t, addr, f.clientTLS(f.alice), "after-rotation", 1)
		// A connection made before the rotation keeps working.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, old); err != nil {
			t.Errorf("client connected before the rotation: %v", err)
		}
	})
}

// TestKcatSSLClientCertificate: kcat (librdkafka) produces and consumes
// over an SSL listener with a client certificate, mapped to its principal.
func TestKcatSSLClientCertificate(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not found (apt-get install kcat): %v", err)
	}
	forEachBackend(t, func(t *testing.T, bk backend) {
		f := newTLSFixture(t)
		logs := &principalLog{}
		ta := startAgent(t, bk, func(c *agent.Config) {
			c.Listeners = []agent.Listener{{Name: "SSL", Protocol: wire.SSL, Listen: "127.0.0.1:0"}}
			c.TLS = f.agentTLS("required")
			c.Logger = slog.New(logs)
		})
		ssl := []string{
			"-b", listenerAddr(t, ta, "SSL"),
			"-X", "security.protocol=ssl",
			"-X", "ssl.ca.location=" + f.ca.CertFile,
			"-X", "ssl.certificate.location=" + f.alice.CertFile,
			"-X", "ssl.key.location=" + f.alice.KeyFile,
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var lines []string
		for i := range 50 {
			lines = append(lines, fmt.Sprintf("line-%d", i))
		}
		produce := exec.CommandContext(ctx, kcat, append(ssl, "-P", "-t", "kcat-ssl", "-X", "request.required.acks=all")...)
		produce.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
		if out, err := produce.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P over SSL: %v\n%s", err, out)
		}
		consume := exec.CommandContext(ctx, kcat, append(ssl, "-C", "-t", "kcat-ssl", "-o", "beginning", "-e", "-q")...)
		var errb bytes.Buffer
		consume.Stderr = &errb
		out, err := consume.Output()
		if err != nil {
			t.Fatalf("kcat -C over SSL: %v\n%s", err, errb.String())
		}
		if got := strings.Fields(string(out)); !slices.Equal(got, lines) {
			t.Fatalf("kcat consumed %d lines %v…, want %d", len(got), got[:min(3, len(got))], len(lines))
		}
		if !logs.seen("User:alice") {
			t.Errorf("kcat's certificate did not map to User:alice; principals seen: %v", logs)
		}
	})
}

// TestListenerConfigErrors: bad listener and TLS settings fail clearly,
// naming the key.
func TestListenerConfigErrors(t *testing.T) {
	f := newTLSFixture(t)
	ssl := []agent.Listener{{Name: "SSL", Protocol: wire.SSL, Listen: "127.0.0.1:0"}}
	for _, c := range []struct {
		what   string
		mutate func(*agent.Config)
		want   string
	}{
		{"SSL listener without a certificate", func(c *agent.Config) { c.Listeners = ssl }, "tls.cert.file: required"},
		{"unknown protocol", func(c *agent.Config) {
			c.Listeners = []agent.Listener{{Name: "X", Protocol: "TLS", Listen: "127.0.0.1:0"}}
		}, "unknown security protocol"},
		{"bad client auth", func(c *agent.Config) {
			c.Listeners, c.TLS = ssl, f.agentTLS("sometimes")
		}, "tls.client.auth"},
		{"bad mapping rule", func(c *agent.Config) {
			c.Listeners, c.TLS = ssl, f.agentTLS("none")
			c.TLS.PrincipalMappingRules = "RULE:(/x"
		}, "ssl.principal.mapping.rules"},
		{"duplicate listener", func(c *agent.Config) {
			c.Listeners = []agent.Listener{ssl[0], ssl[0]}
			c.TLS = f.agentTLS("none")
		}, "listed twice"},
	} {
		cfg := agent.DefaultConfig()
		c.mutate(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate = %v, want an error containing %q", c.what, err, c.want)
		}
	}

	// A missing key file is found when the agent starts.
	cfg := agent.DefaultConfig()
	cfg.Listeners, cfg.TLS = ssl, f.agentTLS("none")
	cfg.TLS.KeyFile = filepath.Join(t.TempDir(), "missing.key")
	s := sqliteMem.newStorage(t)
	if _, err := agent.New(cfg, nil, s.openStore(t)); err == nil || !strings.Contains(err.Error(), "tls.key.file") {
		t.Errorf("New with a missing key file = %v, want an error naming tls.key.file", err)
	}
	if _, err := os.Stat(cfg.TLS.KeyFile); err == nil {
		t.Fatal("the missing key file exists")
	}

	for _, c := range []struct{ listeners, advertised, protoMap, want string }{
		{"TLS://:9093", "", "", "listeners: TLS is not a security protocol"},
		{"SSL://:9093,SSL://:9094", "", "", "listed twice"},
		{"SSL://9093", "", "", "not host:port"},
		{"SSL://:9093", "PLAINTEXT://a:9092", "", "advertised.listeners: PLAINTEXT is not one of listeners"},
		{"INTERNAL://:9093", "", "INTERNAL:TLS", "listener.security.protocol.map"},
	} {
		if _, err := agent.ParseListeners(c.listeners, c.advertised, c.protoMap); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseListeners(%q, %q, %q) = %v, want an error containing %q", c.listeners, c.advertised, c.protoMap, err, c.want)
		}
	}
	ls, err := agent.ParseListeners("internal://127.0.0.1:9092, EXTERNAL://:9093", "EXTERNAL://kafka.example:443", "INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL")
	if err != nil {
		t.Fatal(err)
	}
	want := []agent.Listener{
		{Name: "INTERNAL", Protocol: wire.Plaintext, Listen: "127.0.0.1:9092"},
		{Name: "EXTERNAL", Protocol: wire.SASLSSL, Listen: ":9093", Advertise: "kafka.example:443"},
	}
	if !slices.Equal(ls, want) {
		t.Errorf("ParseListeners = %+v, want %+v", ls, want)
	}
}

// TestListenerMissingOnSomeAgents: in a cluster where only some agents
// serve a listener, that listener's clients are told only of those agents
// (Kafka's rule), partitions are led by them, and a coordinator elsewhere
// is COORDINATOR_NOT_AVAILABLE; the other listener's clients see everyone.
// Clusters run on postgres-minio (see startCluster).
func TestListenerMissingOnSomeAgents(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	s := postgresMinIO.newStorage(t)
	fast := func(c *agent.Config) {
		c.Heartbeat = 50 * time.Millisecond
		c.MembershipTTL = 500 * time.Millisecond
	}
	both := startAgentOn(t, s.openStore(t), s.bucket, func(c *agent.Config) {
		fast(c)
		c.ID = "agent-both"
		c.Listeners = []agent.Listener{
			{Name: "PLAINTEXT", Protocol: wire.Plaintext, Listen: "127.0.0.1:0"},
			{Name: "SSL", Protocol: wire.SSL, Listen: "127.0.0.1:0"},
		}
		c.TLS = f.agentTLS("none")
	})
	plainOnly := startAgentOn(t, s.openStore(t), s.bucket, func(c *agent.Config) {
		fast(c)
		c.ID = "agent-plain"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := func(addr string, conf *tls.Config) []kmsg.MetadataResponseBroker {
		cl := newClient(t, addr, conf)
		md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("Metadata from %s: %v", addr, err)
		}
		return md.Brokers
	}
	plainAddr := listenerAddr(t, both, "PLAINTEXT")
	poll.Until(t, "both agents to see each other", func() bool {
		return len(brokers(plainAddr, nil)) == 2 && len(brokers(plainOnly.addr, nil)) == 2
	})
	sslAddr := listenerAddr(t, both, "SSL")
	bs := brokers(sslAddr, f.clientTLS(nil))
	if len(bs) != 1 || net.JoinHostPort(bs[0].Host, strconv.Itoa(int(bs[0].Port))) != sslAddr {
		t.Fatalf("SSL clients are told of %+v, want only %s", bs, sslAddr)
	}

	// Every partition an SSL client sees is led by the SSL agent.
	cl := newClient(t, sslAddr, f.clientTLS(nil))
	createTopic(t, cl, "split", 16, nil)
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("split")
	req.Topics = append(req.Topics, rt)
	md, err := req.RequestWith(ctx, cl)
	if err != nil || len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 16 {
		t.Fatalf("Metadata of split over SSL: %+v %v", md, err)
	}
	for _, p := range md.Topics[0].Partitions {
		if p.Leader != bs[0].NodeID {
			t.Fatalf("partition %d led by %d over SSL, want %d", p.Partition, p.Leader, bs[0].NodeID)
		}
	}

	// A group coordinated by the PLAINTEXT-only agent is unavailable to
	// SSL clients, available to PLAINTEXT ones.
	plainID := int32(-1)
	for _, b := range brokers(plainAddr, nil) {
		if net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))) == plainOnly.addr {
			plainID = b.NodeID
		}
	}
	plainCl := newClient(t, plainAddr, nil)
	found := false
	for i := 0; i < 200 && !found; i++ {
		group := "g" + strconv.Itoa(i)
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey = group
		onPlain, err := fc.RequestWith(ctx, plainCl)
		if err != nil || onPlain.NodeID != plainID {
			continue
		}
		found = true
		onSSL, err := fc.RequestWith(ctx, cl)
		if err != nil || onSSL.ErrorCode != kerr.CoordinatorNotAvailable.Code {
			t.Errorf("FindCoordinator(%s) over SSL: %+v %v, want COORDINATOR_NOT_AVAILABLE", group, onSSL, err)
		}
	}
	if !found {
		t.Fatal("no group id out of 200 is coordinated by the PLAINTEXT-only agent")
	}
}
