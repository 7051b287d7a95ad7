// Package testenv starts the real services Silt's tests run against — a
// throwaway Postgres cluster (initdb + pg_ctl on a free port) and a MinIO
// server (the pinned binary under .bin/, built with go install if missing) —
// once per test binary, and stops them when the binary exits.
//
// Packages that use it call testenv.Main from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// With SILT_TEST_REQUIRE_SERVICES=1 (make test sets it) a service that cannot
// be started fails the test with a message saying how to install it;
// otherwise the test is skipped, loudly.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

// Main runs the tests and then stops every service this binary started.
func Main(m *testing.M) int {
	code := m.Run()
	cleanupMu.Lock()
	fns := cleanups
	cleanups = nil
	cleanupMu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
	return code
}

// atExit registers fn to run when Main returns.
func atExit(fn func()) {
	cleanupMu.Lock()
	cleanups = append(cleanups, fn)
	cleanupMu.Unlock()
}

// RequireServices reports whether missing services are failures.
func RequireServices() bool { return os.Getenv("SILT_TEST_REQUIRE_SERVICES") == "1" }

// unavailable fails or skips t because a service could not be started.
func unavailable(t testing.TB, service string, err error, howToInstall string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not available: %v\n  to install: %s", service, err, howToInstall)
	if RequireServices() {
		t.Fatalf("%s\n  (SILT_TEST_REQUIRE_SERVICES=1, so this is a failure)", msg)
	}
	t.Skipf("SKIPPING (set SILT_TEST_REQUIRE_SERVICES=1 to make this fail): %s", msg)
}

// RepoRoot returns the directory holding go.mod, found from the working
// directory upwards (tests run in their package directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}
