package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// StoppableMinIO is a MinIO server of a test's own, which the test can kill
// (SIGKILL) and start again on the same port with the same data, to see how
// a client behaves while its object store is gone. Tests that only need a
// bucket use MinIO(t).NewBucket instead: this one costs a server start.
type StoppableMinIO struct {
	// Endpoint is the S3 API address, e.g. "http://127.0.0.1:40123".
	Endpoint  string
	AccessKey string
	SecretKey string

	addr, dir, bin string
	client         *minio.Client

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil while stopped
	exited chan struct{} // closed when cmd has exited
}

// NewStoppableMinIO starts a MinIO server that is stopped and deleted when
// t ends. If MinIO cannot be built the test is skipped or, with
// SILT_TEST_REQUIRE_SERVICES=1, failed.
func NewStoppableMinIO(t testing.TB) *StoppableMinIO {
	t.Helper()
	bin, err := minioBinary(t)
	if err != nil {
		unavailable(t, "MinIO", err, minioInstallHint)
	}
	dir, err := os.MkdirTemp("", "silt-minio-")
	if err != nil {
		t.Fatalf("create minio temp dir: %v", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("find free port: %v", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s := &StoppableMinIO{
		Endpoint:  "http://" + addr,
		AccessKey: "siltadmin",
		SecretKey: "siltadmin-secret",
		addr:      addr, dir: dir, bin: bin,
	}
	s.client, err = minio.New(addr, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region: MinIORegion,
	})
	if err != nil {
		t.Fatalf("minio client: %v", err)
	}
	t.Cleanup(func() {
		s.Kill()
		os.RemoveAll(dir)
	})
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// Client returns a minio-go client for the server.
func (s *StoppableMinIO) Client() *minio.Client { return s.client }

// Env returns the AWS credential environment for a process using the
// server (see MinIOServer.Env).
func (s *StoppableMinIO) Env() []string {
	return (&MinIOServer{AccessKey: s.AccessKey, SecretKey: s.SecretKey}).Env()
}

// CreateBucket creates bucket name on the server.
func (s *StoppableMinIO) CreateBucket(ctx context.Context, name string) error {
	if err := s.client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: MinIORegion}); err != nil {
		return fmt.Errorf("create MinIO bucket %s: %w", name, err)
	}
	return nil
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it to
// exit. Killing a stopped server does nothing.
func (s *StoppableMinIO) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// Start starts a killed server again and waits until it serves S3 requests.
func (s *StoppableMinIO) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("restart minio: %v", err)
	}
}

// TryStart is Start for callers outside the test goroutine: it returns the
// error instead of failing the test.
func (s *StoppableMinIO) TryStart() error { return s.start() }

func (s *StoppableMinIO) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	consolePort, err := freePort()
	if err != nil {
		return fmt.Errorf("find free port: %w", err)
	}
	logPath := filepath.Join(s.dir, "minio.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open minio log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(s.bin, "server", filepath.Join(s.dir, "data"),
		"--address", s.addr,
		"--console-address", "127.0.0.1:"+strconv.Itoa(consolePort),
		"--quiet",
	)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_REGION="+MinIORegion,
		"MINIO_UPDATE=off",
		"MINIO_BROWSER=off",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited

	// The port of a killed server can take a moment to be free again, so
	// a start that fails early is retried until the deadline.
	const startTimeout = 60 * time.Second
	deadline := time.Now().Add(startTimeout)
	httpClient := &http.Client{Timeout: 2 * time.Second}
	probe := &MinIOServer{Endpoint: s.Endpoint, client: s.client}
	for {
		err = probeMinIO(httpClient, probe)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			logs, _ := os.ReadFile(logPath)
			return fmt.Errorf("minio exited during startup\n%s", logs)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			s.cmd = nil
			logs, _ := os.ReadFile(logPath)
			return fmt.Errorf("minio not ready after %s: %v\n%s", startTimeout, err, logs)
		}
	}
}
