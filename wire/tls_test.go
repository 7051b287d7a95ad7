package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/internal/testcerts"
)

// seen is what the TLS test's Metadata handler saw of its connection.
type seen struct {
	principal string
	listener  Listener
	tls       bool
}

// startTLSServer serves a registry whose Metadata handler records what it
// sees of the connection, on a TLS listener l.
func startTLSServer(t *testing.T, l Listener, tc *TLS) (string, *atomic.Pointer[seen]) {
	t.Helper()
	var last atomic.Pointer[seen]
	reg := NewRegistry()
	reg.Register(3, 0, 12, func(ctx context.Context, c *Conn, req kmsg.Request) Reply {
		_, isTLS := c.TLSConnectionState()
		last.Store(&seen{principal: c.Principal(), listener: c.Listener(), tls: isTLS})
		resp := req.(*kmsg.MetadataRequest).ResponseKind().(*kmsg.MetadataResponse)
		return Respond(resp)
	})
	s, err := NewServer(Config{Logger: testLogger(t)}, reg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.ServeTLS(ln, l, tc) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; err != nil {
			t.Errorf("ServeTLS returned %v after Close", err)
		}
	})
	return ln.Addr().String(), &last
}

func metadataOver(t *testing.T, addr string, conf *tls.Config) error {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTLSConfig(conf), kgo.RetryTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	return err
}

func TestServeTLSPrincipals(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	srv := ca.Server(t, "server")
	alice := ca.Client(t, "alice", pkix.Name{CommonName: "alice"})
	mallory := ca.Client(t, "mallory", pkix.Name{CommonName: "mallory"})
	tc := &TLS{
		Config: &tls.Config{
			Certificates: []tls.Certificate{srv.TLSCertificate(t)},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    ca.Pool(),
		},
		Principal: func(c *x509.Certificate) (string, error) {
			if c.Subject.CommonName == "mallory" {
				return "", errors.New("no rule")
			}
			return "User:" + c.Subject.CommonName, nil
		},
	}
	ssl := Listener{Name: "SECURE", Protocol: SSL}
	addr, last := startTLSServer(t, ssl, tc)
	client := func(leaf *testcerts.Leaf) *tls.Config {
		c := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
		if leaf != nil {
			c.Certificates = []tls.Certificate{leaf.TLSCertificate(t)}
		}
		return c
	}

	if err := metadataOver(t, addr, client(alice)); err != nil {
		t.Fatalf("Metadata with a client certificate: %v", err)
	}
	if got := last.Load(); got.principal != "User:alice" || got.listener != ssl || !got.tls {
		t.Errorf("handler saw %+v, want User:alice on %v over TLS", got, ssl)
	}
	if err := metadataOver(t, addr, client(nil)); err != nil {
		t.Fatalf("Metadata without a client certificate: %v", err)
	}
	if got := last.Load(); got.principal != AnonymousPrincipal {
		t.Errorf("without a certificate the principal is %q, want %q", got.principal, AnonymousPrincipal)
	}
	last.Store(nil)
	if err := metadataOver(t, addr, client(mallory)); err == nil {
		t.Errorf("a certificate that maps to no principal was served")
	}
	if last.Load() != nil {
		t.Errorf("a request was handled for a refused certificate")
	}
}

// TestServeTLSHandshakeOffAcceptLoop: a client that connects and never
// says hello neither blocks other clients nor stays connected past the
// handshake timeout.
func TestServeTLSHandshakeOffAcceptLoop(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	srv := ca.Server(t, "server")
	tc := &TLS{
		Config:           &tls.Config{Certificates: []tls.Certificate{srv.TLSCertificate(t)}},
		HandshakeTimeout: 300 * time.Millisecond,
	}
	addr, _ := startTLSServer(t, Listener{Name: "SSL", Protocol: SSL}, tc)
	silent := dial(t, addr)
	defer silent.Close()
	if err := metadataOver(t, addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}); err != nil {
		t.Fatalf("Metadata while another client stalls its handshake: %v", err)
	}
	expectClosed(t, silent)
}

func TestServeProtocolMismatch(t *testing.T) {
	s, err := NewServer(Config{Logger: testLogger(t)}, NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		serve func(net.Listener) error
		what  string
	}{
		{func(ln net.Listener) error { return s.ServeTLS(ln, Listener{Name: "SSL", Protocol: SSL}, nil) }, "SSL with a nil TLS"},
		{func(ln net.Listener) error {
			return s.ServeTLS(ln, Listener{Name: "PLAINTEXT", Protocol: Plaintext}, &TLS{Config: &tls.Config{}})
		}, "PLAINTEXT with TLS"},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.serve(ln); err == nil {
			t.Errorf("%s: served", c.what)
		}
	}
}
