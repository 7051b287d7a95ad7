package tlsauth

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siltstream/silt/internal/testcerts"
)

// handshake connects a client trusting roots to a server with conf over a
// pipe and returns the certificate the server presented.
func handshake(t *testing.T, conf *tls.Config, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	cc, sc := net.Pipe()
	defer cc.Close()
	defer sc.Close()
	errc := make(chan error, 1)
	go func() { errc <- tls.Server(sc, conf).Handshake() }()
	c := tls.Client(cc, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err := c.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	return c.ConnectionState().PeerCertificates[0]
}

func TestServerConfigReloadsRotatedFiles(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first, second := ca.Server(t, "first"), ca.Server(t, "second")
	first.WriteTo(t, certFile, keyFile)

	conf, err := ServerConfig(Config{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if got := handshake(t, conf, ca.Pool()); got.SerialNumber.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatalf("served %v, want the first certificate", got.Subject)
	}

	// Half a rotation (a new key with the old certificate) keeps serving
	// the old pair.
	if err := os.WriteFile(keyFile, second.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := handshake(t, conf, ca.Pool()); got.SerialNumber.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatalf("half-rotated: served %v, want the first certificate", got.Subject)
	}
	second.WriteTo(t, certFile, keyFile)
	if got := handshake(t, conf, ca.Pool()); got.SerialNumber.Cmp(second.Cert.SerialNumber) != 0 {
		t.Fatalf("after rotation: served %v, want the second certificate", got.Subject)
	}
}

func TestServerConfigErrors(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	srv := ca.Server(t, "srv")
	other := ca.Server(t, "other")
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{KeyFile: srv.KeyFile}, "tls.cert.file: required"},
		{Config{CertFile: srv.CertFile}, "tls.key.file: required"},
		{Config{CertFile: srv.CertFile, KeyFile: "/nonexistent/tls.key"}, "tls.key.file"},
		{Config{CertFile: srv.CertFile, KeyFile: other.KeyFile}, "key pair"},
		{Config{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientAuth: "maybe"}, "tls.client.auth"},
		{Config{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientAuth: ClientAuthRequired}, "tls.client.ca.file: required"},
		{Config{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientAuth: ClientAuthRequired, ClientCAFile: srv.KeyFile}, "no PEM certificate"},
	}
	for _, c := range cases {
		if _, err := ServerConfig(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ServerConfig(%+v) = %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
}
