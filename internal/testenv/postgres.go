package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresServer is a throwaway Postgres cluster started for this test
// binary. Each test takes its own database with NewDatabase.
type PostgresServer struct {
	Port int
	dir  string
	cmd  *exec.Cmd
	seq  atomic.Int64
}

var (
	pgOnce   sync.Once
	pgServer *PostgresServer
	pgErr    error
)

const pgInstallHint = "apt-get install postgresql (Debian) — provides initdb and pg_ctl"

// Postgres returns the binary's Postgres server, starting it on first use.
// If Postgres cannot be started the test is skipped or, with
// SILT_TEST_REQUIRE_SERVICES=1, failed.
func Postgres(t testing.TB) *PostgresServer {
	t.Helper()
	pgOnce.Do(func() { pgServer, pgErr = startPostgres() })
	if pgErr != nil {
		unavailable(t, "PostgreSQL", pgErr, pgInstallHint)
	}
	return pgServer
}

// URL returns the connection URL of database db on the server.
func (s *PostgresServer) URL(db string) string {
	return fmt.Sprintf("postgres://silt@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// NewDatabase creates a fresh, empty database and returns its URL. Databases
// are not dropped: the whole cluster is deleted when the binary exits.
func (s *PostgresServer) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("silt_%d", s.seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatalf("connect to test postgres: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return s.URL(name)
}

// PostgresDurable reports whether SILT_TEST_PG_DURABLE=1 asks for the
// throwaway Postgres cluster to run with Postgres's default durability
// (fsync and full-page writes on), as production does: for benchmarks
// whose figures are quoted. Tests do not need it.
func PostgresDurable() bool { return os.Getenv("SILT_TEST_PG_DURABLE") == "1" }

// findPostgresBin looks for a Postgres server binary on PATH, then in the
// Debian layout /usr/lib/postgresql/<version>/bin (newest version first).
func findPostgresBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or under /usr/lib/postgresql/*/bin", name)
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// pgCredential returns the credential to run Postgres with: nil normally,
// or an unprivileged user when running as root, because initdb and postgres
// refuse to run as root.
func pgCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var lastErr error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			lastErr = err
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil {
			lastErr = fmt.Errorf("user %s: non-numeric uid/gid", name)
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root and no unprivileged user (postgres, nobody) to run Postgres as: %w", lastErr)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startPostgres() (*PostgresServer, error) {
	initdb, err := findPostgresBin("initdb")
	if err != nil {
		return nil, err
	}
	postgresBin, err := findPostgresBin("postgres")
	if err != nil {
		return nil, err
	}
	cred, err := pgCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "silt-pg-")
	if err != nil {
		return nil, fmt.Errorf("create postgres temp dir: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("chown postgres temp dir: %w", err)
		}
	}
	dataDir := filepath.Join(dir, "data")

	var out bytes.Buffer
	cmd := exec.Command(initdb, "-D", dataDir, "-U", "silt", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-locale")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out.String())
	}

	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("find free port: %w", err)
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create postgres log: %w", err)
	}
	defer logFile.Close()
	// fsync and full-page writes are off because this cluster is thrown away
	// when the test binary exits: crash safety buys nothing here and costs
	// seconds per run. Production settings are not tested by these flags;
	// benchmarks that quote figures set SILT_TEST_PG_DURABLE=1 to keep them.
	args := []string{
		"-D", dataDir,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + dir,
		"-c", "max_connections=300",
	}
	if !PostgresDurable() {
		args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off")
	}
	srv := exec.Command(postgresBin, args...)
	srv.Dir = dir
	srv.Stdout, srv.Stderr = logFile, logFile
	// Pdeathsig kills the server if the test binary dies without running
	// its cleanups (a panic, a timeout, SIGKILL).
	srv.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()

	s := &PostgresServer{Port: port, dir: dir, cmd: srv}
	stop := func() {
		// SIGQUIT is pg_ctl stop -m immediate: no checkpoint, the data is
		// about to be deleted anyway.
		_ = srv.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-srv.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		os.RemoveAll(dir)
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			cancel()
			break
		}
		cancel()
		select {
		case werr := <-exited:
			logs, _ := os.ReadFile(logPath)
			os.RemoveAll(dir)
			ok = true
			return nil, fmt.Errorf("postgres exited during startup: %v\n%s", werr, logs)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(logPath)
			stop()
			ok = true
			return nil, errors.Join(fmt.Errorf("postgres not ready after 60s: %w", err), errors.New(string(logs)))
		}
	}
	ok = true
	atExit(stop)
	return s, nil
}
