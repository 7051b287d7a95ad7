package main

// The system under test: MinIO, Postgres and one agent process started
// here, or an existing cluster named by --brokers.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/internal/testenv"
)

// s3Target is where the raw floor is measured.
type s3Target struct {
	endpoint, bucket, region, accessKey, secretKey string
}

// benchEnv is what setUp started; close stops it in reverse order.
type benchEnv struct {
	brokers  []string
	s3       *s3Target
	httpAddr string // agent status endpoint, if we started the agent
	agentLog string
	keepLogs bool
	tmpDir   string
	started  []string // descriptions, for the report
	stops    []func()
}

func (e *benchEnv) onClose(fn func()) { e.stops = append(e.stops, fn) }

func (e *benchEnv) close() {
	for i := len(e.stops) - 1; i >= 0; i-- {
		e.stops[i]()
	}
	e.stops = nil
}

func (e *benchEnv) describe() string { return strings.Join(e.started, "; ") }

// setUp starts the services (or takes --brokers). On error the returned
// env, if not nil, still holds what must be stopped.
func setUp(ctx context.Context, o options, logf func(string, ...any)) (*benchEnv, error) {
	env := &benchEnv{keepLogs: o.keepLogs}
	if o.brokers != "" {
		env.brokers = strings.Split(o.brokers, ",")
		env.started = append(env.started, "existing cluster "+o.brokers)
		if o.s3Endpoint != "" && o.s3Bucket != "" {
			env.s3 = &s3Target{o.s3Endpoint, o.s3Bucket, o.s3Region, o.s3AccessKey, o.s3SecretKey}
		} else {
			logf("no --s3-endpoint/--s3-bucket: the raw object-store floor is skipped")
		}
		return env, nil
	}

	tmp, err := os.MkdirTemp("", "silt-bench-")
	if err != nil {
		return nil, err
	}
	env.tmpDir = tmp
	env.onClose(func() {
		if env.keepLogs {
			logf("agent log kept at %s", env.agentLog)
			return
		}
		os.RemoveAll(tmp)
	})

	// The silt build runs while the servers start: on 2 cores it is the
	// slowest step.
	bin := o.siltBin
	built := make(chan error, 1)
	if bin == "" {
		bin = filepath.Join(tmp, "silt")
		logf("building ./cmd/silt")
		go func() { built <- buildSilt(ctx, bin) }()
	} else {
		built <- nil
	}

	logf("starting MinIO")
	mio, stopMinIO, err := testenv.StartMinIO(logf)
	if err != nil {
		<-built
		return env, fmt.Errorf("start MinIO: %w", err)
	}
	env.onClose(stopMinIO)
	env.started = append(env.started, "MinIO "+testenv.MinIOVersion+" (single drive, local temp dir)")
	const bucket = "silt-bench"
	if err := mio.CreateBucket(ctx, bucket); err != nil {
		<-built
		return env, err
	}
	env.s3 = &s3Target{mio.Endpoint, bucket, testenv.MinIORegion, mio.AccessKey, mio.SecretKey}

	logf("starting Postgres")
	pg, stopPG, err := testenv.StartPostgres()
	if err != nil {
		<-built
		return env, fmt.Errorf("start Postgres: %w", err)
	}
	env.onClose(stopPG)
	env.started = append(env.started, "Postgres "+postgresVersion(ctx, pg.URL("postgres"))+" (throwaway cluster, fsync=off)")
	dbURL, err := pg.CreateDatabase(ctx, "silt_bench")
	if err != nil {
		<-built
		return env, err
	}

	if err := <-built; err != nil {
		return env, err
	}
	args := []string{"agent",
		"--bucket-url", mio.BucketURL(bucket, "bench"),
		"--metastore-url", dbURL,
		"--log-format", "json",
		"--log-level", "warn",
	}
	if o.flushInterval != "" {
		args = append(args, "--flush-interval", o.flushInterval)
	}
	if o.flushBytes != "" {
		args = append(args, "--flush-bytes", o.flushBytes)
	}
	if err := env.startAgent(ctx, bin, args, mio.Env(), logf); err != nil {
		return env, err
	}
	desc := "1 silt agent process"
	if o.flushInterval != "" || o.flushBytes != "" {
		desc += fmt.Sprintf(" (flush.interval=%s flush.bytes=%s)", orDefault(o.flushInterval), orDefault(o.flushBytes))
	} else {
		desc += " (default flush settings)"
	}
	env.started = append(env.started, desc)
	return env, nil
}

func orDefault(s string) string {
	if s == "" {
		return "default"
	}
	return s
}

// buildSilt builds ./cmd/silt from the repository root into bin.
func buildSilt(ctx context.Context, bin string) error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/silt")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/silt: %w\n%s", err, out)
	}
	return nil
}

// startAgent runs `silt agent` on free local ports and waits until it is
// ready; close sends it SIGTERM (SIGKILL after 20 s).
func (e *benchEnv) startAgent(ctx context.Context, bin string, args, extraEnv []string, logf func(string, ...any)) error {
	kafkaAddr, err := freeAddr()
	if err != nil {
		return err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	args = append(args, "--listen", kafkaAddr, "--http-listen", httpAddr)
	e.agentLog = filepath.Join(e.tmpDir, "agent.log")
	logFile, err := os.Create(e.agentLog)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so Ctrl-C reaches only us and we stop it in
	// order; Pdeathsig in case we die without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	logf("starting silt agent on %s (http %s)", kafkaAddr, httpAddr)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start silt agent: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	e.onClose(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	e.brokers = []string{kafkaAddr}
	e.httpAddr = httpAddr

	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr))
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := cl.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case werr := <-exited:
			exited <- werr // let close find it
			return fmt.Errorf("silt agent exited during start: %v\n%s", werr, tail(e.agentLog, 4096))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("silt agent did not answer within 60s: %v\n%s", err, tail(e.agentLog, 4096))
		}
	}
}

// agentStatus fetches the agent's /status JSON, best effort: nil if there is
// no agent of ours or it does not answer JSON.
func (e *benchEnv) agentStatus(ctx context.Context) map[string]any {
	if e.httpAddr == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.httpAddr+"/status", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&m) != nil {
		return nil
	}
	return m
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(bytes.TrimSpace(b))
}

// postgresVersion asks the server, best effort.
func postgresVersion(ctx context.Context, url string) string {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "(version unknown)"
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "(version unknown)"
	}
	if i := strings.IndexByte(v, ' '); i > 0 {
		v = v[:i]
	}
	return v
}
