package tlsauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// ClientAuth is tls.client.auth: whether SSL and SASL_SSL listeners ask
// for a client certificate (Kafka's ssl.client.auth).
type ClientAuth string

const (
	// ClientAuthNone asks for no client certificate.
	ClientAuthNone ClientAuth = "none"
	// ClientAuthRequest asks for one; a client without one connects as
	// User:ANONYMOUS (or authenticates with SASL on SASL_SSL), a client
	// with one must present one signed by the client CA.
	ClientAuthRequest ClientAuth = "request"
	// ClientAuthRequired refuses a client without a valid certificate.
	ClientAuthRequired ClientAuth = "required"
)

// ParseClientAuth parses tls.client.auth; "" is none.
func ParseClientAuth(s string) (ClientAuth, error) {
	switch ClientAuth(s) {
	case "", ClientAuthNone:
		return ClientAuthNone, nil
	case ClientAuthRequest, ClientAuthRequired:
		return ClientAuth(s), nil
	}
	return "", fmt.Errorf("tls.client.auth: %q is not none, request or required", s)
}

func (a ClientAuth) tlsType() tls.ClientAuthType {
	switch a {
	case ClientAuthRequest:
		return tls.VerifyClientCertIfGiven
	case ClientAuthRequired:
		return tls.RequireAndVerifyClientCert
	}
	return tls.NoClientCert
}

// Config is the TLS configuration of an agent's SSL and SASL_SSL
// listeners. Errors name the config keys in parentheses.
type Config struct {
	CertFile     string // tls.cert.file: PEM certificate chain, leaf first
	KeyFile      string // tls.key.file: PEM private key
	ClientCAFile string // tls.client.ca.file: PEM CAs that sign client certificates
	ClientAuth   ClientAuth
	Logger       *slog.Logger
}

// Validate checks that the keys needed are set and consistent, without
// reading the files.
func (c Config) Validate() error {
	if _, err := ParseClientAuth(string(c.ClientAuth)); err != nil {
		return err
	}
	switch {
	case c.CertFile == "":
		return errors.New("tls.cert.file: required by SSL and SASL_SSL listeners")
	case c.KeyFile == "":
		return errors.New("tls.key.file: required by SSL and SASL_SSL listeners")
	case c.ClientAuth != "" && c.ClientAuth != ClientAuthNone && c.ClientCAFile == "":
		return fmt.Errorf("tls.client.ca.file: required when tls.client.auth is %s", c.ClientAuth)
	}
	return nil
}

// ServerConfig returns the TLS configuration of a listener. It reads the
// files now, failing clearly if they are missing or do not form a valid
// key pair, and again at each new connection if they changed on disk
// (compared by identity, size and modification time, so the check costs a
// few stat calls per handshake): a rotation takes effect for new
// connections without a restart. A rotation caught half-written (a key
// that does not match its certificate) keeps the previous certificate and
// is logged until the files agree again.
func ServerConfig(c Config) (*tls.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	r := &reloader{cfg: c}
	if err := r.load(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.current(), nil
		},
	}, nil
}

// reloader holds the current per-connection TLS configuration and rebuilds
// it when its files change.
type reloader struct {
	cfg Config

	mu     sync.Mutex
	stamps []os.FileInfo // of CertFile, KeyFile, ClientCAFile, when loaded
	conf   *tls.Config
	failed bool // the last reload failed (logged once per change)
}

func (r *reloader) files() []string {
	fs := []string{r.cfg.CertFile, r.cfg.KeyFile}
	if r.cfg.ClientCAFile != "" {
		fs = append(fs, r.cfg.ClientCAFile)
	}
	return fs
}

// load reads every file and builds the configuration.
func (r *reloader) load() error {
	stamps, err := r.stat()
	if err != nil {
		return err
	}
	conf, err := r.build()
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.stamps, r.conf, r.failed = stamps, conf, false
	r.mu.Unlock()
	return nil
}

func (r *reloader) stat() ([]os.FileInfo, error) {
	keys := []string{"tls.cert.file", "tls.key.file", "tls.client.ca.file"}
	var out []os.FileInfo
	for i, f := range r.files() {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keys[i], err)
		}
		out = append(out, fi)
	}
	return out, nil
}

func (r *reloader) build() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(r.cfg.CertFile, r.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert.file, tls.key.file: load key pair: %w", err)
	}
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   r.cfg.ClientAuth.tlsType(),
	}
	if r.cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(r.cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.client.ca.file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.client.ca.file: %s holds no PEM certificate", r.cfg.ClientCAFile)
		}
		conf.ClientCAs = pool
	}
	return conf, nil
}

// current returns the configuration for a new connection, reloading it
// first if a file changed.
func (r *reloader) current() *tls.Config {
	stamps, err := r.stat()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if !r.failed {
			r.cfg.Logger.Warn("TLS files unreadable; serving the previous certificate", "err", err)
			r.failed = true
		}
		return r.conf
	}
	if sameStamps(stamps, r.stamps) {
		return r.conf
	}
	conf, err := r.build()
	if err != nil {
		if !r.failed {
			r.cfg.Logger.Warn("TLS files changed but do not load; serving the previous certificate", "err", err)
			r.failed = true
		}
		return r.conf
	}
	r.stamps, r.conf, r.failed = stamps, conf, false
	r.cfg.Logger.Info("TLS certificate reloaded", "cert_file", r.cfg.CertFile,
		"subject", conf.Certificates[0].Leaf.Subject.String(), "not_after", conf.Certificates[0].Leaf.NotAfter)
	return r.conf
}

func sameStamps(a, b []os.FileInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !os.SameFile(a[i], b[i]) || !a[i].ModTime().Equal(b[i].ModTime()) || a[i].Size() != b[i].Size() {
			return false
		}
	}
	return true
}
