package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

// Mechanism names, as SaslHandshake and sasl.mechanisms spell them.
const (
	Plain       = "PLAIN"
	OAuthBearer = "OAUTHBEARER"
)

// Mechanisms lists every mechanism Silt implements.
var Mechanisms = []string{Plain, ScramSHA256.name, ScramSHA512.name, OAuthBearer}

// Config configures an Authenticator. The keys named are the silt
// binary's.
type Config struct {
	// Mechanisms are the enabled mechanisms (sasl.mechanisms).
	Mechanisms []string
	// Credentials is where SCRAM credentials are read, at every
	// authentication. Needed for PLAIN and SCRAM.
	Credentials metastore.CredentialStore
	// MaxReauth bounds a session's lifetime (connections.max.reauth.ms,
	// KIP-368); 0 leaves sessions without a bound except an OAUTHBEARER
	// token's expiry.
	MaxReauth   time.Duration
	OAuthBearer OAuthBearerConfig
	Logger      *slog.Logger
}

// OAuthBearerConfig is how OAUTHBEARER tokens (JWTs) are validated.
type OAuthBearerConfig struct {
	// JWKSURL serves the keys tokens are signed with
	// (sasl.oauthbearer.jwks.url).
	JWKSURL string
	// Issuer, if set, must equal the token's iss claim
	// (sasl.oauthbearer.expected.issuer).
	Issuer string
	// Audience, if set, must be one of the token's aud claim
	// (sasl.oauthbearer.expected.audience).
	Audience string
	// SubClaim names the claim holding the principal's name; default
	// "sub" (sasl.oauthbearer.sub.claim.name).
	SubClaim string
	// ClockSkew is the leeway for exp and nbf; default 30s, as Kafka's
	// sasl.oauthbearer.clock.skew.seconds.
	ClockSkew time.Duration
	// HTTPClient fetches the JWKS; default a client with a 10s timeout.
	HTTPClient *http.Client
}

// Authenticator runs the enabled SASL mechanisms for wire's SASL
// listeners. It logs and counts every failure, without secrets.
type Authenticator struct {
	cfg      Config
	log      *slog.Logger
	creds    metastore.CredentialStore
	jwks     *jwksCache // nil unless OAUTHBEARER is enabled
	decoyKey [32]byte
	results  *prometheus.CounterVec // mechanism, result
}

var _ wire.Authenticator = (*Authenticator)(nil)

// Validate checks the configuration keys. Errors name the key.
func (cfg Config) Validate() error {
	if len(cfg.Mechanisms) == 0 {
		return errors.New("sasl.mechanisms: no mechanism enabled")
	}
	seen := map[string]bool{}
	for _, m := range cfg.Mechanisms {
		if !slices.Contains(Mechanisms, m) {
			return fmt.Errorf("sasl.mechanisms: unknown mechanism %q (want any of %s)", m, strings.Join(Mechanisms, ", "))
		}
		if seen[m] {
			return fmt.Errorf("sasl.mechanisms: %s listed twice", m)
		}
		seen[m] = true
	}
	if cfg.MaxReauth < 0 {
		return fmt.Errorf("connections.max.reauth.ms: must not be negative, got %v", cfg.MaxReauth)
	}
	if seen[OAuthBearer] {
		u, err := url.Parse(cfg.OAuthBearer.JWKSURL)
		if cfg.OAuthBearer.JWKSURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("sasl.oauthbearer.jwks.url: OAUTHBEARER needs an http(s) URL, got %q", cfg.OAuthBearer.JWKSURL)
		}
	}
	return nil
}

// New validates cfg and returns an Authenticator. Errors name the config
// key.
func New(cfg Config) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, m := range cfg.Mechanisms {
		seen[m] = true
	}
	if (seen[Plain] || seen[ScramSHA256.name] || seen[ScramSHA512.name]) && cfg.Credentials == nil {
		return nil, errors.New("sasl.mechanisms: PLAIN and SCRAM need a credential store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{
		cfg:   cfg,
		log:   cfg.Logger,
		creds: cfg.Credentials,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_sasl_authentications_total",
			Help: "SASL authentications (and re-authentications), by mechanism and result (success or failure).",
		}, []string{"mechanism", "result"}),
	}
	rand.Read(a.decoyKey[:])
	for _, m := range cfg.Mechanisms {
		a.results.WithLabelValues(m, "success")
		a.results.WithLabelValues(m, "failure")
	}
	if seen[OAuthBearer] {
		o := &a.cfg.OAuthBearer
		if o.SubClaim == "" {
			o.SubClaim = "sub"
		}
		if o.ClockSkew == 0 {
			o.ClockSkew = 30 * time.Second
		}
		if o.HTTPClient == nil {
			o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
		}
		a.jwks = newJWKSCache(o.JWKSURL, o.HTTPClient)
	}
	return a, nil
}

// Collectors returns the Prometheus collectors to register.
func (a *Authenticator) Collectors() []prometheus.Collector {
	return []prometheus.Collector{a.results}
}

// Mechanisms implements wire.Authenticator.
func (a *Authenticator) Mechanisms() []string { return slices.Clone(a.cfg.Mechanisms) }

// Begin implements wire.Authenticator.
func (a *Authenticator) Begin(mechanism string, c *wire.Conn) wire.SASLExchange {
	return a.begin(mechanism, c.RemoteAddr().String())
}

func (a *Authenticator) begin(mechanism, remote string) wire.SASLExchange {
	at := attempt{a: a, mechanism: mechanism, remote: remote}
	switch mechanism {
	case Plain:
		return &plainExchange{attempt: at}
	case OAuthBearer:
		return &oauthExchange{attempt: at}
	}
	m, _ := ScramMechanismByName(mechanism)
	return &scramExchange{attempt: at, m: m}
}

// attempt is what every exchange shares: who is trying, from where, and
// how it ends.
type attempt struct {
	a         *Authenticator
	mechanism string
	remote    string
	user      string // once the client has named it
}

// errAuthenticationFailed is what a failed exchange returns; the reason
// is logged, not returned, so nothing about it can reach a client.
var errAuthenticationFailed = errors.New("authentication failed")

// fail logs and counts a failed attempt. reason must hold no secret.
func (t *attempt) fail(reason string) error {
	t.a.results.WithLabelValues(t.mechanism, "failure").Inc()
	t.a.log.Warn("SASL authentication failed", "mechanism", t.mechanism, "user", t.user, "remote", t.remote, "reason", reason)
	return errAuthenticationFailed
}

// succeed counts a successful attempt and returns its result; a credential
// expiring at expiry (zero: never) bounds the session, as does MaxReauth.
func (t *attempt) succeed(expiry time.Time) *wire.SASLResult {
	t.a.results.WithLabelValues(t.mechanism, "success").Inc()
	lifetime := t.a.cfg.MaxReauth
	if !expiry.IsZero() {
		if d := time.Until(expiry); lifetime == 0 || d < lifetime {
			lifetime = max(d, time.Millisecond)
		}
	}
	return &wire.SASLResult{Principal: "User:" + t.user, SessionLifetime: lifetime}
}
