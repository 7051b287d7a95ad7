// Package testcerts makes throwaway X.509 material for tests: a CA, server
// certificates for loopback, and client certificates with a chosen subject,
// written as PEM files the way an operator (or cert-manager) would hand them
// to an agent. Keys are ECDSA P-256, so generating them is quick. NewCAIn
// and IssueServer return errors instead of failing a test, for silt-bench.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
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
	ca, err := NewCAIn(t.TempDir(), cn)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return ca
}

// NewCAIn makes a CA named cn whose files (its own and those of the
// certificates it issues) live in dir, for callers that are not tests (the
// benchmark's agents).
func NewCAIn(dir, cn string) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Silt tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA: %w", err)
	}
	ca := &CA{Cert: cert, Key: key, CertPEM: certPEM(der), dir: dir}
	ca.CertFile = filepath.Join(ca.dir, "ca.crt")
	if err := writeFile(ca.CertFile, ca.CertPEM); err != nil {
		return nil, err
	}
	return ca, nil
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
	l, err := ca.IssueServer(name, dnsNames...)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return l
}

// IssueServer is Server for callers that are not tests.
func (ca *CA) IssueServer(name string, dnsNames ...string) (*Leaf, error) {
	return ca.issue(name, &x509.Certificate{
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
	l, err := ca.issue(name, &x509.Certificate{
		Subject:     subject,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return l
}

func (ca *CA) issue(name string, tmpl *x509.Certificate) (*Leaf, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	if tmpl.SerialNumber, err = serial(); err != nil {
		return nil, err
	}
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key of %s: %w", name, err)
	}
	l := &Leaf{
		CertPEM:  certPEM(der),
		KeyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		CertFile: filepath.Join(ca.dir, name+".crt"),
		KeyFile:  filepath.Join(ca.dir, name+".key"),
		Cert:     cert,
	}
	if err := writeFile(l.CertFile, l.CertPEM); err != nil {
		return nil, err
	}
	if err := writeFile(l.KeyFile, l.KeyPEM); err != nil {
		return nil, err
	}
	return l, nil
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
	if err := writeFile(tmp, b); err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("testcerts: %v", err)
	}
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return key, nil
}

func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	return n, nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writeFile(path string, b []byte) error {
	return os.WriteFile(path, b, 0o600)
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
