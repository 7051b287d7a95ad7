package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestConfigSASLKeys: the SASL keys by file, environment and flag.
func TestConfigSASLKeys(t *testing.T) {
	t.Setenv("SILT_SASL_OAUTHBEARER_EXPECTED_AUDIENCE", "silt")
	s, err := loadSettingsT(t, "sasl:\n  oauthbearer:\n    jwks:\n      url: https://idp.test/jwks\nconnections.max.reauth.ms: 60000\n",
		"--sasl-mechanisms", "SCRAM-SHA-512, OAUTHBEARER", "--connection-failed-authentication-delay-ms", "250")
	if err != nil {
		t.Fatal(err)
	}
	a := s.Agent
	if strings.Join(a.SASL.Mechanisms, ",") != "SCRAM-SHA-512,OAUTHBEARER" || a.SASL.OAuthBearer.JWKSURL != "https://idp.test/jwks" ||
		a.SASL.OAuthBearer.Audience != "silt" || a.SASL.OAuthBearer.SubClaim != "sub" || a.SASL.MaxReauth != time.Minute ||
		a.Wire.FailedAuthenticationDelay != 250*time.Millisecond {
		t.Errorf("SASL settings: %+v, delay %v", a.SASL, a.Wire.FailedAuthenticationDelay)
	}
	s, err = loadSettingsT(t, "", "--connection-failed-authentication-delay-ms", "0")
	if err != nil || s.Agent.Wire.FailedAuthenticationDelay >= 0 || len(s.Agent.SASL.Mechanisms) != 0 {
		t.Errorf("delay 0 must mean none (negative for wire): %v, %v", s.Agent.Wire.FailedAuthenticationDelay, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--sasl-mechanisms", "GSSAPI"}, `sasl.mechanisms: unknown mechanism "GSSAPI"`},
		{[]string{"--sasl-mechanisms", "OAUTHBEARER"}, `sasl.oauthbearer.jwks.url: OAUTHBEARER needs an http(s) URL`},
		{[]string{"--connections-max-reauth-ms", "-5"}, `connections.max.reauth.ms: must not be negative`},
		{[]string{"--connection-failed-authentication-delay-ms", "soon"}, `connection.failed.authentication.delay.ms: invalid integer "soon"`},
	} {
		_, err := loadSettingsT(t, "", c.args...)
		var ce *configError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want a config error containing %q", c.args, err, c.want)
		}
	}
}
