package deploy

import (
	"context"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeTLS checks docker-compose.tls.yml layered over
// docker-compose.yml: every agent's merged environment is a valid
// configuration with a SASL_SSL listener advertised under its service
// name, its TLS files are mounted, and the TLS port is published.
func TestComposeTLS(t *testing.T) {
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir: root,
		ConfigFiles: []types.ConfigFile{
			{Filename: filepath.Join(root, "docker-compose.yml")},
			{Filename: filepath.Join(root, "docker-compose.tls.yml")},
		},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("silt", true) })
	if err != nil {
		t.Fatalf("load docker-compose.yml + docker-compose.tls.yml: %v", err)
	}
	agents := 0
	for name, s := range p.Services {
		if s.Build == nil {
			continue
		}
		agents++
		env := map[string]string{}
		for k, v := range s.Environment {
			if v != nil {
				env[k] = *v
			}
		}
		cfg := checkEnvApplied(t, "compose TLS "+name, env)
		var sslAddr, sslAdv string
		for _, e := range strings.Split(cfg["listeners"], ",") {
			if addr, ok := strings.CutPrefix(e, "SASL_SSL://"); ok {
				sslAddr = addr
			}
		}
		for _, e := range strings.Split(cfg["advertised.listeners"], ",") {
			if addr, ok := strings.CutPrefix(e, "SASL_SSL://"); ok {
				sslAdv = addr
			}
		}
		if sslAddr == "" || !listensOnAllInterfaces(sslAddr) {
			t.Fatalf("%s: no SASL_SSL listener on all interfaces in %q", name, cfg["listeners"])
		}
		sslPort := port(t, name+" SASL_SSL listener", sslAddr)
		if !strings.HasPrefix(sslAdv, name+":") || port(t, name+" SASL_SSL advertised", sslAdv) != sslPort {
			t.Errorf("%s: SASL_SSL advertised as %q, want %s:%d", name, sslAdv, name, sslPort)
		}
		if !hasPort(s.Ports, sslPort, strconv.Itoa(sslPort)) {
			t.Errorf("%s: SASL_SSL port %d not published", name, sslPort)
		}
		for _, key := range []string{"tls.cert.file", "tls.key.file"} {
			dir := path.Dir(cfg[key])
			mounted := false
			for _, v := range s.Volumes {
				mounted = mounted || (v.Target == dir && v.ReadOnly)
			}
			if cfg[key] == "" || !mounted {
				t.Errorf("%s: %s %q is not in a read-only mounted directory", name, key, cfg[key])
			}
		}
	}
	if agents != 3 {
		t.Errorf("found %d agents, want 3", agents)
	}
}
