package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/testenv"
	"go.yaml.in/yaml/v3"
)

// repoRoot is the module root, one level up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// effectiveConfig runs `silt config show --strict-env` with env (NAME=value)
// as the only SILT_ variables, so an unknown SILT_ name or a bad value fails,
// and returns the printed configuration flattened to dotted keys.
func effectiveConfig(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	bin := testenv.SiltBinary(t)
	cmd := exec.Command(bin, "config", "show", "--strict-env")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SILT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("silt config show --strict-env with %v: %v\n%s", env, err, stderr.String())
	}
	var tree map[string]any
	if err := yaml.Unmarshal(stdout.Bytes(), &tree); err != nil {
		t.Fatalf("config show output is not YAML: %v\n%s", err, stdout.String())
	}
	flat := map[string]string{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			flat[prefix+k] = fmt.Sprint(v)
		}
	}
	walk("", tree)
	return flat
}

// checkEnvApplied asserts that every SILT_ variable of env is reflected by
// the effective configuration (secrets are masked, so those only match up
// to the mask), and returns the configuration.
func checkEnvApplied(t *testing.T, what string, env map[string]string) map[string]string {
	t.Helper()
	cfg := effectiveConfig(t, env)
	byEnv := map[string]string{}
	for key := range cfg {
		byEnv["SILT_"+strings.ToUpper(strings.ReplaceAll(key, ".", "_"))] = key
	}
	for name, val := range env {
		if !strings.HasPrefix(name, "SILT_") {
			continue
		}
		key, ok := byEnv[name]
		if !ok {
			t.Errorf("%s: %s is not a config key of silt agent", what, name)
			continue
		}
		got := cfg[key]
		if strings.Contains(got, "xxxxx") {
			continue // masked: a password was there
		}
		if got != val {
			t.Errorf("%s: %s=%q but silt config show says %s: %q", what, name, val, key, got)
		}
	}
	return cfg
}

func port(t *testing.T, what, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%s: %q is not host:port: %v", what, hostport, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s: %q: bad port", what, hostport)
	}
	return n
}

// kafkaListener is the listen and advertised address of the listener
// clients on the network use: listen and advertise, or with listeners the
// first listener not bound to loopback and its advertised.listeners entry
// (its listen address if none).
func kafkaListener(t *testing.T, cfg map[string]string) (listen, advertise string) {
	t.Helper()
	if cfg["listeners"] == "" {
		return cfg["listen"], cfg["advertise"]
	}
	for _, e := range strings.Split(cfg["listeners"], ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(e), "://")
		host, _, err := net.SplitHostPort(addr)
		if !ok || err != nil {
			t.Fatalf("listeners: bad entry %q", e)
		}
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			continue
		}
		advertise = addr
		for _, a := range strings.Split(cfg["advertised.listeners"], ",") {
			if n, aaddr, ok := strings.Cut(strings.TrimSpace(a), "://"); ok && n == name {
				advertise = aaddr
			}
		}
		return addr, advertise
	}
	t.Fatalf("listeners %q: none reachable from the network", cfg["listeners"])
	return "", ""
}

// listensOnAllInterfaces: a probe or another container reaches the agent
// only if it does not listen on loopback.
func listensOnAllInterfaces(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	return err == nil && (host == "" || host == "0.0.0.0" || host == "::")
}

func shutdownGrace(t *testing.T, cfg map[string]string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(cfg["shutdown.grace"])
	if err != nil {
		t.Fatalf("shutdown.grace %q: %v", cfg["shutdown.grace"], err)
	}
	return d
}

// --- docker-compose.yml ------------------------------------------------------

// TestStrictEnvCatchesTypos makes sure the env check above has teeth.
func TestStrictEnvCatchesTypos(t *testing.T) {
	bin := testenv.SiltBinary(t)
	cmd := exec.Command(bin, "config", "show", "--strict-env")
	cmd.Env = append(os.Environ(), "SILT_FLUSH_INTERVALL=1s")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "SILT_FLUSH_INTERVALL") {
		t.Fatalf("typo in a SILT_ variable: %v\n%s", err, out)
	}
}

// --- deploy/README.md --------------------------------------------------------
