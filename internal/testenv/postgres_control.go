package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// StoppablePostgres is a Postgres cluster of a test's own, which the test
// can stop and start again on the same port with the same data, to see how
// a client behaves while its database is down. It costs an initdb (about a
// second), so tests that only need a database use Postgres(t) instead.
type StoppablePostgres struct {
	Port int

	dir, dataDir string
	bin          string
	cred         *syscall.Credential

	mu     sync.Mutex
	cmd    *exec.Cmd  // nil while stopped
	exited chan error // receives cmd's exit
}

// NewStoppablePostgres creates and starts a cluster that is deleted when t
// ends. If Postgres is not installed the test is skipped or, with
// SILT_TEST_REQUIRE_SERVICES=1, failed.
func NewStoppablePostgres(t testing.TB) *StoppablePostgres {
	t.Helper()
	s, err := newStoppablePostgres()
	if err != nil {
		unavailable(t, "PostgreSQL", err, pgInstallHint)
	}
	t.Cleanup(func() {
		s.stop()
		os.RemoveAll(s.dir)
	})
	if err := s.start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	return s
}

func newStoppablePostgres() (*StoppablePostgres, error) {
	initdb, err := findPostgresBin("initdb")
	if err != nil {
		return nil, err
	}
	bin, err := findPostgresBin("postgres")
	if err != nil {
		return nil, err
	}
	cred, err := pgCredential()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("find free port: %w", err)
	}
	dir, err := os.MkdirTemp("", "silt-pg-")
	if err != nil {
		return nil, fmt.Errorf("create postgres temp dir: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("chown postgres temp dir: %w", err)
		}
	}
	s := &StoppablePostgres{Port: port, dir: dir, dataDir: filepath.Join(dir, "data"), bin: bin, cred: cred}
	var out bytes.Buffer
	cmd := exec.Command(initdb, "-D", s.dataDir, "-U", "silt", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-locale")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out.String())
	}
	return s, nil
}

// URL returns the connection URL of database db ("postgres" always exists).
func (s *StoppablePostgres) URL(db string) string {
	return fmt.Sprintf("postgres://silt@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// Stop shuts the server down (fast shutdown: clients are disconnected) and
// waits for it to exit. Stopping a stopped server does nothing.
func (s *StoppablePostgres) Stop(t testing.TB) {
	t.Helper()
	s.stop()
}

// StopImmediate stops the server the way a crash would (`pg_ctl stop -m
// immediate`: SIGQUIT to the postmaster, no checkpoint; the next start runs
// crash recovery) and waits for it to exit. Stopping a stopped server does
// nothing.
func (s *StoppablePostgres) StopImmediate(t testing.TB) {
	t.Helper()
	s.stopWith(syscall.SIGQUIT)
}

// Start starts a stopped server again and waits until it accepts
// connections.
func (s *StoppablePostgres) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("restart postgres: %v", err)
	}
}

// TryStart is Start for callers outside the test goroutine: it returns the
// error instead of failing the test.
func (s *StoppablePostgres) TryStart() error { return s.start() }

// Kill is StopImmediate for callers outside the test goroutine.
func (s *StoppablePostgres) Kill() { s.stopWith(syscall.SIGQUIT) }

func (s *StoppablePostgres) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	logPath := filepath.Join(s.dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open postgres log: %w", err)
	}
	defer logFile.Close()
	// As in startPostgres: durability settings off for a throwaway cluster.
	// A fast shutdown still checkpoints, so a restart finds its data.
	cmd := exec.Command(s.bin,
		"-D", s.dataDir,
		"-p", strconv.Itoa(s.Port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+s.dir,
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
	)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case werr := <-exited:
			s.cmd = nil
			logs, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited during startup: %v\n%s", werr, logs)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres not ready after 60s: %w\n%s", err, logs)
		}
	}
}

func (s *StoppablePostgres) stop() { s.stopWith(syscall.SIGINT) } // fast shutdown

func (s *StoppablePostgres) stopWith(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	s.cmd = nil
}
