package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIOVersion is the MinIO release the tests run against, pinned so that
// every developer and CI machine tests the same server.
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

const minioInstallHint = "make .bin/minio (go install github.com/minio/minio@" + MinIOVersion + " with GOBIN=.bin)"

// MinIORegion is the region the test server and its bucket URLs use.
const MinIORegion = "us-east-1"

// MinIOBucketPrefix is the key prefix in the URLs NewBucket returns: a
// driver opened from such a URL stores key k as object "silt/k".
const MinIOBucketPrefix = "silt"

// MinIOServer is a MinIO server started for this test binary. Each test
// takes its own bucket with NewBucket.
type MinIOServer struct {
	// Endpoint is the S3 API address, e.g. "http://127.0.0.1:40123".
	Endpoint  string
	AccessKey string
	SecretKey string

	client *minio.Client
	seq    atomic.Int64
}

var (
	minioOnce   sync.Once
	minioServer *MinIOServer
	minioErr    error
)

// MinIO returns the binary's MinIO server, starting it on first use (and
// building the pinned binary into <repo>/.bin if it is missing). If MinIO
// cannot be started the test is skipped or, with
// SILT_TEST_REQUIRE_SERVICES=1, failed.
func MinIO(t testing.TB) *MinIOServer {
	t.Helper()
	minioOnce.Do(func() { minioServer, minioErr = startMinIO(t) })
	if minioErr != nil {
		unavailable(t, "MinIO", minioErr, minioInstallHint)
	}
	return minioServer
}

// Client returns a minio-go client for the server, for tests that check
// what our own driver stored without going through it.
func (s *MinIOServer) Client() *minio.Client { return s.client }

// Env returns the environment a process needs to reach the server through
// the AWS default credential chain, as KEY=value strings for exec.Cmd.Env.
func (s *MinIOServer) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + MinIORegion,
		// No instance metadata service here; do not wait for one.
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// SetEnv sets Env in the test's own environment (restored when t ends), so
// that code in the test binary finds the credentials in the default chain.
func (s *MinIOServer) SetEnv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				t.Setenv(kv[:i], kv[i+1:])
				break
			}
		}
	}
}

// NewBucket creates a fresh, empty bucket (with minio-go, independently of
// Silt's s3 driver) and returns its name and a bucketurl URL for it:
// s3://<name>/silt?region=us-east-1&endpoint=<Endpoint>&path_style=true.
// Buckets are not removed: the server's data is deleted when the binary
// exits.
func (s *MinIOServer) NewBucket(t testing.TB) (name, rawURL string) {
	t.Helper()
	name = fmt.Sprintf("silt-test-%d-%d", os.Getpid(), s.seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: MinIORegion}); err != nil {
		t.Fatalf("create MinIO bucket %s: %v", name, err)
	}
	q := url.Values{}
	q.Set("region", MinIORegion)
	q.Set("endpoint", s.Endpoint)
	q.Set("path_style", "true")
	return name, fmt.Sprintf("s3://%s/%s?%s", name, MinIOBucketPrefix, q.Encode())
}

// minioBinary returns the path of the pinned MinIO binary, building it
// first if needed. A file lock keeps test binaries that start in parallel
// from building it at the same time.
func minioBinary(t testing.TB) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	binDir := filepath.Join(root, ".bin")
	bin := filepath.Join(binDir, "minio")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(binDir, ".minio.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // another test binary built it while we waited
	}
	t.Logf("testenv: %s is missing; building MinIO %s with go install (this takes a few minutes)", bin, MinIOVersion)
	start := time.Now()
	cmd := exec.Command("go", "install", "github.com/minio/minio@"+MinIOVersion)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOBIN="+binDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go install minio: %w\n%s", err, out)
	}
	t.Logf("testenv: built %s in %s", bin, time.Since(start).Round(time.Second))
	return bin, nil
}

func startMinIO(t testing.TB) (*MinIOServer, error) {
	bin, err := minioBinary(t)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "silt-minio-")
	if err != nil {
		return nil, fmt.Errorf("create minio temp dir: %w", err)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("find free port: %w", err)
	}
	consolePort, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("find free port: %w", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s := &MinIOServer{
		Endpoint:  "http://" + addr,
		AccessKey: "siltadmin",
		SecretKey: "siltadmin-secret",
	}

	logPath := filepath.Join(dir, "minio.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create minio log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "server", filepath.Join(dir, "data"),
		"--address", addr,
		"--console-address", "127.0.0.1:"+strconv.Itoa(consolePort),
		"--quiet",
	)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_REGION="+MinIORegion,
		"MINIO_UPDATE=off",
		"MINIO_BROWSER=off",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig kills the server if the test binary dies without running
	// its cleanups (a panic, a timeout, SIGKILL).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		os.RemoveAll(dir)
	}

	s.client, err = minio.New(addr, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region: MinIORegion,
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("minio client: %w", err)
	}

	// Ready when the liveness probe answers and an authenticated request
	// succeeds (the server may be live a moment before it serves S3).
	const startTimeout = 60 * time.Second
	deadline := time.Now().Add(startTimeout)
	httpClient := &http.Client{Timeout: 2 * time.Second}
	for {
		err = probeMinIO(httpClient, s)
		if err == nil {
			break
		}
		select {
		case werr := <-exited:
			logs, _ := os.ReadFile(logPath)
			os.RemoveAll(dir)
			return nil, fmt.Errorf("minio exited during startup: %v\n%s", werr, logs)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(logPath)
			stop()
			return nil, errors.Join(fmt.Errorf("minio not ready after %s: %w", startTimeout, err), errors.New(string(logs)))
		}
	}
	atExit(stop)
	return s, nil
}

func probeMinIO(httpClient *http.Client, s *MinIOServer) error {
	resp, err := httpClient.Get(s.Endpoint + "/minio/health/live")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health check: %s", resp.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = s.client.ListBuckets(ctx)
	return err
}
