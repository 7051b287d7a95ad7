package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	siltOnce sync.Once
	siltPath string
	siltErr  error
)

// SiltBinary builds cmd/silt once per test binary and returns its path.
// Tests that run the real binary (end-to-end, deployment checks, the CLI's
// own tests) share the build; Main removes it.
func SiltBinary(t testing.TB) string {
	t.Helper()
	siltOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			siltErr = err
			return
		}
		dir, err := os.MkdirTemp("", "silt-bin")
		if err != nil {
			siltErr = err
			return
		}
		atExit(func() { os.RemoveAll(dir) })
		siltPath = filepath.Join(dir, "silt")
		cmd := exec.Command("go", "build", "-o", siltPath, "./cmd/silt")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			siltErr = fmt.Errorf("go build ./cmd/silt: %v\n%s", err, out)
		}
	})
	if siltErr != nil {
		t.Fatal(siltErr)
	}
	return siltPath
}

// SyncBuffer collects a child process's output while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
