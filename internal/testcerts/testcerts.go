// Package testcerts makes throwaway X.509 material for tests: a CA, server
// certificates for loopback, and client certificates with a chosen subject,
// written as PEM files the way an operator (or cert-manager) would hand them
// to an agent. Keys are ECDSA P-256, so generating them is quick.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority that signs test certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	// CertFile is the CA certificate as a PEM file in the test's temp dir.
	CertFile string
	dir      string
}

// NewCA makes a CA named cn whose files live in t.TempDir().
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Silt tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testcerts: create CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testcerts: parse CA: %v", err)
	}
	ca := &CA{Cert: cert, Key: key, CertPEM: certPEM(der), dir: t.TempDir()}
	ca.CertFile = filepath.Join(ca.dir, "ca.crt")
	writeFile(t, ca.CertFile, ca.CertPEM)
	return ca
}

// Pool returns a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Leaf is a certificate and key signed by a CA.
type Leaf struct {
	CertPEM, KeyPEM []byte
	// CertFile and KeyFile are CertPEM and KeyPEM written to files.
	CertFile, KeyFile string
	Cert              *x509.Certificate
}

// TLSCertificate returns the leaf as a tls.Certificate.
func (l *Leaf) TLSCertificate(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM)
	if err != nil {
		t.Fatalf("testcerts: key pair: %v", err)
	}
	return c
}

// Server issues a server certificate for localhost, 127.0.0.1 and ::1 plus
// any extra DNS names, written to files named after name.
func (ca *CA) Server(t testing.TB, name string, dnsNames ...string) *Leaf {
	t.Helper()
	return ca.issue(t, name, &x509.Certificate{
		Subject:     pkix.Name{CommonName: name, Organization: []string{"Silt tests"}},
		DNSNames:    append([]string{"localhost"}, dnsNames...),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// Client issues a client certificate with the given subject, written to
// files named after name.
func (ca *CA) Client(t testing.TB, name string, subject pkix.Name) *Leaf {
	t.Helper()
	return ca.issue(t, name, &x509.Certificate{
		Subject:     subject,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *CA) issue(t testing.TB, name string, tmpl *x509.Certificate) *Leaf {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = serial(t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatalf("testcerts: issue %s: %v", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testcerts: parse %s: %v", name, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testcerts: marshal key of %s: %v", name, err)
	}
	l := &Leaf{
		CertPEM:  certPEM(der),
		KeyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		CertFile: filepath.Join(ca.dir, name+".crt"),
		KeyFile:  filepath.Join(ca.dir, name+".key"),
		Cert:     cert,
	}
	writeFile(t, l.CertFile, l.CertPEM)
	writeFile(t, l.KeyFile, l.KeyPEM)
	return l
}

// WriteTo writes the leaf's certificate and key over certFile and keyFile
// the way a rotation does: each to a temporary file renamed into place.
func (l *Leaf) WriteTo(t testing.TB, certFile, keyFile string) {
	t.Helper()
	replaceFile(t, keyFile, l.KeyPEM)
	replaceFile(t, certFile, l.CertPEM)
}

func replaceFile(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, b)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("testcerts: %v", err)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testcerts: generate key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("testcerts: serial: %v", err)
	}
	return n
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatalf("testcerts: %v", err)
	}
}

// ClientTLS returns a client configuration that trusts ca and presents
// leaf (nil: no client certificate), for TLS clients in tests (kgo's
// DialTLSConfig, tls.Dial).
func (ca *CA) ClientTLS(t testing.TB, leaf *Leaf) *tls.Config {
	t.Helper()
	c := &tls.Config{RootCAs: ca.Pool()}
	if leaf != nil {
		c.Certificates = []tls.Certificate{leaf.TLSCertificate(t)}
	}
	return c
}
