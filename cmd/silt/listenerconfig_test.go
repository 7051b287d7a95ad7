package main

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/internal/testcerts"
	"github.com/siltstream/silt/wire"
)

// TestListenerSettings: listeners, advertised.listeners and the TLS keys
// come from file, environment and flags like every key.
func TestListenerSettings(t *testing.T) {
	clearSiltEnv(t)
	yaml := `
listeners: INTERNAL://127.0.0.1:9092,SASL_SSL://0.0.0.0:9093
listener:
  security:
    protocol:
      map: INTERNAL:PLAINTEXT
tls:
  cert:
    file: /etc/silt/tls/tls.crt
  key:
    file: /etc/silt/tls/tls.key
`
	t.Setenv("SILT_ADVERTISED_LISTENERS", "SASL_SSL://kafka.example:443")
	t.Setenv("SILT_TLS_CLIENT_AUTH", "request")
	t.Setenv("SILT_SASL_MECHANISMS", "SCRAM-SHA-512")
	s, err := loadSettingsT(t, yaml, "--tls-client-ca-file", "/etc/silt/tls/ca.crt",
		"--ssl-principal-mapping-rules", "RULE:^CN=([^,]*),.*$/$1/L,DEFAULT", "--http-pprof")
	if err != nil {
		t.Fatal(err)
	}
	want := []agent.Listener{
		{Name: "INTERNAL", Protocol: wire.Plaintext, Listen: "127.0.0.1:9092"},
		{Name: "SASL_SSL", Protocol: wire.SASLSSL, Listen: "0.0.0.0:9093", Advertise: "kafka.example:443"},
	}
	if !slices.Equal(s.Agent.Listeners, want) {
		t.Errorf("listeners = %+v, want %+v", s.Agent.Listeners, want)
	}
	tls := s.Agent.TLS
	if tls.CertFile != "/etc/silt/tls/tls.crt" || tls.KeyFile != "/etc/silt/tls/tls.key" || tls.ClientCAFile != "/etc/silt/tls/ca.crt" ||
		tls.ClientAuth != "request" || !strings.HasPrefix(tls.PrincipalMappingRules, "RULE:") || !s.HTTPPprof {
		t.Errorf("TLS settings = %+v, pprof %v", tls, s.HTTPPprof)
	}

	// The shorthand still means one PLAINTEXT listener, on the default
	// address unless set.
	clearSiltEnv(t)
	s, err = loadSettingsT(t, "")
	if err != nil || s.Agent.Listen != "127.0.0.1:9092" || len(s.Agent.Listeners) != 0 || s.HTTPPprof {
		t.Errorf("defaults: listen %q, listeners %+v, pprof %v, %v", s.Agent.Listen, s.Agent.Listeners, s.HTTPPprof, err)
	}
}

func TestListenerSettingsErrors(t *testing.T) {
	clearSiltEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--listeners", "PLAINTEXT://:9092", "--listen", "127.0.0.1:9092"}, "listeners: cannot be combined with listen"},
		{[]string{"--listeners", "PLAINTEXT://:9092", "--advertise", "a:9092"}, "listeners: cannot be combined with listen"},
		{[]string{"--advertised-listeners", "PLAINTEXT://a:9092"}, "advertised.listeners: set without listeners"},
		{[]string{"--listeners", "TLS://:9093"}, "TLS is not a security protocol"},
		{[]string{"--listeners", "SSL://:9093"}, "tls.cert.file: required"},
		{[]string{"--listeners", "SSL://:9093", "--tls-cert-file", "c", "--tls-key-file", "k", "--tls-client-auth", "required"}, "tls.client.ca.file: required"},
		{[]string{"--tls-client-auth", "always"}, "tls.client.auth"},
		{[]string{"--ssl-principal-mapping-rules", "RULE:x"}, "ssl.principal.mapping.rules"},
		{[]string{"--listeners", "SASL_PLAINTEXT://:9092"}, "sasl.mechanisms: required"},
	} {
		_, err := loadSettingsT(t, "", c.args...)
		var ce *configError
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, &ce) {
			t.Errorf("%q: %v, want a config error containing %q", c.args, err, c.want)
		}
	}
}

// TestAgentMissingKeyFile: silt agent refuses to start, with a config
// error naming the key, when a TLS file is missing.
func TestAgentMissingKeyFile(t *testing.T) {
	clearSiltEnv(t)
	ca := testcerts.NewCA(t, "ca")
	srv := ca.Server(t, "agent")
	dir := t.TempDir()
	_, errOut, code := runCLI(t, "agent", "--bucket-url", "mem://", "--metastore-url", "sqlite://"+filepath.Join(dir, "meta.db"),
		"--http-listen", "", "--listeners", "SSL://127.0.0.1:0",
		"--tls-cert-file", srv.CertFile, "--tls-key-file", filepath.Join(dir, "missing.key"))
	if code != 2 || !strings.Contains(errOut, "tls.key.file") {
		t.Errorf("silt agent with a missing key file: exit %d, stderr %q; want 2 naming tls.key.file", code, errOut)
	}
}
