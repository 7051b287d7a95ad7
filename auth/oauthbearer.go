package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/siltstream/silt/wire"
)

// oauthExchange is SASL OAUTHBEARER (RFC 7628) with a JWT bearer token,
// validated against the keys of a JWKS URL, the expected issuer and
// audience, exp and nbf. One message: the client's initial response. A bad
// token fails at once with SASL_AUTHENTICATION_FAILED rather than with
// RFC 7628's error challenge, which clients would only have to
// acknowledge.
type oauthExchange struct {
	attempt
	done bool
}

// maxOAuthMessage bounds the client's initial response: a token and a few
// extensions.
const maxOAuthMessage = 64 << 10

func (e *oauthExchange) Step(ctx context.Context, msg []byte) ([]byte, *wire.SASLResult, error) {
	if e.done {
		return nil, nil, e.fail("message after the exchange ended")
	}
	e.done = true
	if len(msg) > maxOAuthMessage {
		return nil, nil, e.fail("message too long")
	}
	token, err := parseOAuthBearerMessage(string(msg))
	if err != nil {
		return nil, nil, e.fail(err.Error())
	}
	user, exp, err := e.a.validateJWT(ctx, token, time.Now())
	if user != "" {
		e.user = user
	}
	if err != nil {
		return nil, nil, e.fail(err.Error())
	}
	return nil, e.succeed(exp), nil
}

// parseOAuthBearerMessage parses RFC 7628's client initial response,
// gs2-header %x01 *(key "=" value %x01) %x01, and returns the bearer token
// of its auth key. Extensions are ignored. Errors never quote the token.
func parseOAuthBearerMessage(msg string) (string, error) {
	gs2, rest, ok := strings.Cut(msg, "\x01")
	if !ok || !strings.HasSuffix(rest, "\x01\x01") && rest != "\x01" {
		return "", errors.New("malformed OAUTHBEARER message")
	}
	cbind, authzid, ok := strings.Cut(gs2, ",")
	if !ok || !strings.HasSuffix(authzid, ",") {
		return "", errors.New("malformed gs2 header")
	}
	switch {
	case cbind == "n", cbind == "y":
	case strings.HasPrefix(cbind, "p="):
		return "", errors.New("channel binding requested; not supported")
	default:
		return "", errors.New("malformed gs2 header")
	}
	var token string
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "\x01\x01"), "\x01") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return "", errors.New("malformed key-value pair")
		}
		if k != "auth" {
			continue
		}
		scheme, t, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", errors.New("auth is not a Bearer token")
		}
		token = strings.TrimLeft(t, " ")
	}
	if token == "" {
		return "", errors.New("no bearer token")
	}
	return token, nil
}

// jwtClaims are the registered claims Silt checks; the principal claim is
// read from the raw map.
type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// validateJWT checks a compact JWS: signature by a JWKS key, exp, nbf,
// iss and aud. It returns the principal's name (when the claims could be
// read, even if they fail) and the token's expiry.
func (a *Authenticator) validateJWT(ctx context.Context, token string, now time.Time) (string, time.Time, error) {
	o := a.cfg.OAuthBearer
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", time.Time{}, errors.New("token is not a signed JWT")
	}
	var hdr jwtHeader
	if err := decodeJSONPart(parts[0], &hdr); err != nil {
		return "", time.Time{}, fmt.Errorf("token header: %w", err)
	}
	var claims map[string]any
	if err := decodeJSONPart(parts[1], &claims); err != nil {
		return "", time.Time{}, fmt.Errorf("token claims: %w", err)
	}
	user, _ := claims[o.SubClaim].(string)
	sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "="))
	if err != nil {
		return user, time.Time{}, errors.New("token signature is not base64url")
	}
	alg, ok := jwsAlgs[hdr.Alg]
	if !ok {
		return user, time.Time{}, fmt.Errorf("token algorithm %q not accepted", hdr.Alg)
	}
	key, err := a.jwks.key(ctx, hdr.Kid, alg.kty)
	if err != nil {
		return user, time.Time{}, err
	}
	if err := alg.verify(key, []byte(parts[0]+"."+parts[1]), sig); err != nil {
		return user, time.Time{}, err
	}

	exp, ok := numericDate(claims["exp"])
	switch {
	case !ok:
		return user, time.Time{}, errors.New("token has no exp claim")
	case !now.Before(exp.Add(o.ClockSkew)):
		return user, exp, errors.New("token expired")
	}
	if nbf, ok := numericDate(claims["nbf"]); ok && now.Add(o.ClockSkew).Before(nbf) {
		return user, exp, errors.New("token not valid yet (nbf)")
	}
	if o.Issuer != "" {
		if iss, _ := claims["iss"].(string); iss != o.Issuer {
			return user, exp, fmt.Errorf("token issuer %q is not the expected one", iss)
		}
	}
	if o.Audience != "" && !hasAudience(claims["aud"], o.Audience) {
		return user, exp, errors.New("token audience does not include the expected one")
	}
	if user == "" {
		return "", exp, fmt.Errorf("token has no string claim %q for the principal", o.SubClaim)
	}
	return user, exp, nil
}

func decodeJSONPart(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(part, "="))
	if err != nil {
		return errors.New("not base64url")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errors.New("not a JSON object")
	}
	return nil
}

func numericDate(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(f * 1000)), true
}

func hasAudience(aud any, want string) bool {
	switch aud := aud.(type) {
	case string:
		return aud == want
	case []any:
		for _, a := range aud {
			if s, ok := a.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// jwsAlg is one accepted JWS algorithm: RSASSA-PKCS1-v1_5 or ECDSA.
type jwsAlg struct {
	kty  string // the JWK key type it needs
	hash crypto.Hash
	size int // ECDSA: bytes of r and of s
}

var jwsAlgs = map[string]jwsAlg{
	"RS256": {kty: "RSA", hash: crypto.SHA256},
	"RS384": {kty: "RSA", hash: crypto.SHA384},
	"RS512": {kty: "RSA", hash: crypto.SHA512},
	"ES256": {kty: "EC", hash: crypto.SHA256, size: 32},
	"ES384": {kty: "EC", hash: crypto.SHA384, size: 48},
	"ES512": {kty: "EC", hash: crypto.SHA512, size: 66},
}

func (alg jwsAlg) verify(key crypto.PublicKey, signed, sig []byte) error {
	h := alg.hash.New()
	h.Write(signed)
	digest := h.Sum(nil)
	switch k := key.(type) {
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(k, alg.hash, digest, sig) != nil {
			return errors.New("token signature invalid")
		}
		return nil
	case *ecdsa.PublicKey:
		if len(sig) != 2*alg.size || (k.Curve.Params().BitSize+7)/8 != alg.size {
			return errors.New("token signature invalid")
		}
		r := new(big.Int).SetBytes(sig[:alg.size])
		s := new(big.Int).SetBytes(sig[alg.size:])
		if !ecdsa.Verify(k, digest, r, s) {
			return errors.New("token signature invalid")
		}
		return nil
	}
	return errors.New("token signature invalid")
}

// JWKS caching: keys are kept for jwksMaxAge; an unknown kid refetches the
// set (a rotated key appears at once), at most once per jwksMinRefresh, so
// tokens naming made-up kids cannot make the agent hammer the identity
// provider. A set is at most jwksMaxBytes and jwksMaxKeys.
const (
	jwksMaxAge     = time.Hour
	jwksMinRefresh = time.Second
	jwksMaxBytes   = 1 << 20
	jwksMaxKeys    = 100
)

type jwksCache struct {
	url        string
	client     *http.Client
	minRefresh time.Duration // jwksMinRefresh; tests change it

	mu          sync.Mutex
	keys        map[string]jwk // by kid
	fetched     time.Time      // when keys were fetched
	lastAttempt time.Time
}

type jwk struct {
	kty string
	key crypto.PublicKey
}

func newJWKSCache(url string, client *http.Client) *jwksCache {
	return &jwksCache{url: url, client: client, minRefresh: jwksMinRefresh}
}

// key returns the key kid names (the only key of type kty if kid is
// empty), fetching the set if it is unknown or stale.
func (c *jwksCache) key(ctx context.Context, kid, kty string) (crypto.PublicKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.lookup(kid, kty); ok && time.Since(c.fetched) < jwksMaxAge {
		return k, nil
	}
	if time.Since(c.lastAttempt) >= c.minRefresh || c.keys == nil {
		c.lastAttempt = time.Now()
		keys, err := c.fetch(ctx)
		if err != nil {
			// A key we had still verifies while the provider is down.
			if k, ok := c.lookup(kid, kty); ok {
				return k, nil
			}
			return nil, fmt.Errorf("fetch JWKS: %w", err)
		}
		c.keys, c.fetched = keys, time.Now()
	}
	if k, ok := c.lookup(kid, kty); ok {
		return k, nil
	}
	return nil, fmt.Errorf("no JWKS key for kid %q", kid)
}

func (c *jwksCache) lookup(kid, kty string) (crypto.PublicKey, bool) {
	if kid != "" {
		k, ok := c.keys[kid]
		return k.key, ok && k.kty == kty
	}
	var found crypto.PublicKey
	n := 0
	for _, k := range c.keys {
		if k.kty == kty {
			found, n = k.key, n+1
		}
	}
	return found, n == 1
}

func (c *jwksCache) fetch(ctx context.Context) (map[string]jwk, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", c.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > jwksMaxBytes {
		return nil, fmt.Errorf("GET %s: more than %d bytes", c.url, jwksMaxBytes)
	}
	return parseJWKS(body)
}

// parseJWKS reads a JSON Web Key Set (RFC 7517), keeping the RSA and EC
// signature keys it can use.
func parseJWKS(body []byte) (map[string]jwk, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			N   string `json:"n"`
			E   string `json:"e"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	if len(set.Keys) > jwksMaxKeys {
		set.Keys = set.Keys[:jwksMaxKeys]
	}
	out := make(map[string]jwk, len(set.Keys))
	b64 := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return nil
		}
		return b
	}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch k.Kty {
		case "RSA":
			n, e := b64(k.N), b64(k.E)
			if len(n) == 0 || len(e) == 0 || len(e) > 4 {
				continue
			}
			pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
			if pub.N.BitLen() < 2048 {
				continue
			}
			out[k.Kid] = jwk{kty: "RSA", key: pub}
		case "EC":
			var curve elliptic.Curve
			switch k.Crv {
			case "P-256":
				curve = elliptic.P256()
			case "P-384":
				curve = elliptic.P384()
			case "P-521":
				curve = elliptic.P521()
			default:
				continue
			}
			size := (curve.Params().BitSize + 7) / 8
			x, y := b64(k.X), b64(k.Y)
			if len(x) != size || len(y) != size {
				continue
			}
			pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
			if err != nil {
				continue
			}
			out[k.Kid] = jwk{kty: "EC", key: pub}
		}
	}
	return out, nil
}
