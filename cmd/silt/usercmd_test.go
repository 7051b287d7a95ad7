package main

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/auth"
	"github.com/siltstream/silt/cache"
	"github.com/siltstream/silt/metastore/sqlite"
	"github.com/siltstream/silt/objectstore/mem"
	"github.com/siltstream/silt/wire"
)

// TestUserCommandsBootstrap is the operator's path to a SASL-only
// cluster: the first admin is written straight into the metastore
// (--metastore-url), then that admin manages users through a SASL
// listener with AlterUserScramCredentials and DescribeUserScramCredentials.
func TestUserCommandsBootstrap(t *testing.T) {
	clearSiltEnv(t)
	dbPath := filepath.Join(t.TempDir(), "meta.db")
	metaURL := "sqlite://" + dbPath

	t.Setenv("SILT_USER_PASSWORD", "admin-secret")
	if out, errOut, code := runCLI(t, "user", "create", "admin", "--metastore-url", metaURL); code != 0 ||
		!strings.Contains(out, "user admin: SCRAM-SHA-512 credential set") {
		t.Fatalf("user create --metastore-url: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code := runCLI(t, "user", "list", "--metastore-url", metaURL)
	if code != 0 || tableRow(out, "admin", "SCRAM-SHA-256", "8192") == nil || tableRow(out, "admin", "SCRAM-SHA-512", "8192") == nil {
		t.Fatalf("user list --metastore-url: exit %d\n%s", code, out)
	}

	addr := startSASLAgent(t, dbPath)
	t.Setenv("SILT_ADMIN_SASL_PASSWORD", "admin-secret")
	asAdmin := []string{"--brokers", addr, "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "admin"}
	run := func(args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, append(args, asAdmin...)...)
	}
	t.Setenv("SILT_USER_PASSWORD", "bob-secret")
	if out, errOut, code := run("user", "create", "bob", "--mechanism", "SCRAM-SHA-256", "--iterations", "4096"); code != 0 {
		t.Fatalf("user create bob: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code := run("user", "list")
	if code != 0 || tableRow(out, "bob", "SCRAM-SHA-256", "4096") == nil || tableRow(out, "admin", "SCRAM-SHA-512", "8192") == nil {
		t.Fatalf("user list: exit %d\n%s%s", code, out, errOut)
	}
	// bob can now use the brokers.
	if out, errOut, code := runCLI(t, "user", "list", "bob", "--brokers", addr, "--sasl-mechanism", "PLAIN", "--sasl-username", "bob", "--sasl-password", "bob-secret"); code != 0 {
		t.Fatalf("user list as bob: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := run("user", "create", "weak", "--iterations", "100"); code != 2 || !strings.Contains(errOut, "--iterations") {
		t.Errorf("user create with 100 iterations: exit %d, %s", code, errOut)
	}
	if out, errOut, code := run("user", "delete", "bob"); code != 0 || !strings.Contains(out, "user bob: SCRAM-SHA-256 credential deleted") {
		t.Fatalf("user delete bob: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := run("user", "list", "bob"); code != 1 || !strings.Contains(errOut, "RESOURCE_NOT_FOUND") {
		t.Errorf("user list bob after delete: exit %d, %s", code, errOut)
	}
	if _, errOut, code := run("user", "delete", "bob"); code != 1 || !strings.Contains(errOut, "RESOURCE_NOT_FOUND") {
		t.Errorf("user delete bob twice: exit %d, %s", code, errOut)
	}
	// A wrong admin password is refused.
	t.Setenv("SILT_ADMIN_SASL_PASSWORD", "guess")
	if _, errOut, code := run("user", "list"); code != 1 || !strings.Contains(errOut, "SASL_AUTHENTICATION_FAILED") {
		t.Errorf("user list with a wrong admin password: exit %d, %s", code, errOut)
	}
	// Deleting in the metastore directly.
	if out, errOut, code := runCLI(t, "user", "delete", "admin", "--mechanism", "SCRAM-SHA-256", "--metastore-url", metaURL); code != 0 ||
		!strings.Contains(out, "SCRAM-SHA-256 credential deleted") {
		t.Fatalf("user delete --metastore-url: exit %d\n%s%s", code, out, errOut)
	}
	out, _, _ = runCLI(t, "user", "list", "--metastore-url", metaURL)
	if tableRow(out, "admin", "SCRAM-SHA-256") != nil || tableRow(out, "admin", "SCRAM-SHA-512") == nil {
		t.Errorf("user list after deleting one mechanism:\n%s", out)
	}
}

// startSASLAgent serves an in-process agent over the sqlite metastore at
// dbPath with one SASL_PLAINTEXT listener (until the listeners key lets
// silt agent do it).
func startSASLAgent(t *testing.T, dbPath string) string {
	t.Helper()
	store, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cb, err := cache.New(mem.New(), cache.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cb.Stop)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.DefaultConfig()
	cfg.ID, cfg.Listen = "user-test", ln.Addr().String()
	cfg.SASL.Mechanisms = []string{auth.Plain, "SCRAM-SHA-512"}
	cfg.Wire.FailedAuthenticationDelay = -1
	a, err := agent.New(cfg, cb, store)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- a.ServeListener(ln, wire.Listener{Name: "SASL_PLAINTEXT", Protocol: wire.SASLPlaintext})
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}
