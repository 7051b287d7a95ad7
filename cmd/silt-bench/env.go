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
	"github.com/twmb/franz-go/pkg/kmsg"

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
	agents   []*agentProc // agents we started, agent 0 first
	keepLogs bool
	tmpDir   string
	started  []string // descriptions, for the report
	stops    []func()

	// What the overload phase needs to start an agent of its own.
	bin    string
	mio    *testenv.MinIOServer
	pg     *testenv.PostgresServer
	bucket string
	// The cluster's bucket and database, for agents started later.
	bucketURL, dbURL string
	// saslSSL is set when the cluster's agents also serve SASL_SSL.
	saslSSL *saslSSLSetup

	// writerZone and readerZone pin clients (client.id silt_az=<zone>):
	// producers to the writing agent, the second tail consumer and the
	// catch-up reader to another one. Empty: no pinning.
	writerZone, readerZone string
}

// agentProc is one `silt agent` process we started.
type agentProc struct {
	id, zone  string
	kafkaAddr string
	httpAddr  string
	// saslSSLAddr is the SASL_SSL listener's address, if it has one.
	saslSSLAddr string
	logPath     string
	pid         int
	done        chan struct{} // closed when the process has exited
	exitErr     error         // set before done is closed
}

func (a *agentProc) alive() bool {
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// agent returns the i-th agent we started, or nil.
func (e *benchEnv) agent(i int) *agentProc {
	if i < 0 || i >= len(e.agents) {
		return nil
	}
	return e.agents[i]
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
		if o.zones != "" {
			z := strings.Split(o.zones, ",")
			env.writerZone = z[0]
			if len(z) > 1 {
				env.readerZone = z[1]
			}
		}
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
			logf("agent logs kept in %s", tmp)
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
	env.mio, env.bucket = mio, bucket

	logf("starting Postgres")
	pg, stopPG, err := testenv.StartPostgres()
	if err != nil {
		<-built
		return env, fmt.Errorf("start Postgres: %w", err)
	}
	env.onClose(stopPG)
	env.pg = pg
	env.started = append(env.started, "Postgres "+postgresVersion(ctx, pg.URL("postgres"))+" (throwaway cluster, fsync=off)")
	dbURL, err := pg.CreateDatabase(ctx, "silt_bench")
	if err != nil {
		<-built
		return env, err
	}

	if err := <-built; err != nil {
		return env, err
	}
	env.bin = bin
	env.bucketURL, env.dbURL = mio.BucketURL(bucket, "bench"), dbURL
	if o.saslSSL && o.kgoTest == "" {
		if env.saslSSL, err = newSASLSSLSetup(filepath.Join(tmp, "tls")); err != nil {
			return env, err
		}
	}
	for i := 0; i < o.agents; i++ {
		args := env.agentArgs(o, env.bucketURL, env.dbURL)
		a, err := env.startAgent(ctx, i, fmt.Sprintf("z%d", i), args, env.saslSSL != nil, logf)
		if err != nil {
			return env, err
		}
		env.brokers = append(env.brokers, a.kafkaAddr)
	}
	if err := env.waitForCluster(ctx); err != nil {
		return env, err
	}
	if env.saslSSL != nil {
		if err := env.saslSSL.createUser(ctx, bin, dbURL); err != nil {
			return env, err
		}
	}
	env.writerZone = env.agents[0].zone
	if len(env.agents) > 1 {
		env.readerZone = env.agents[1].zone
	}
	desc := fmt.Sprintf("%d silt agent processes (zones z0..z%d, one cluster on one bucket and database)", o.agents, o.agents-1)
	if o.agents == 1 {
		desc = "1 silt agent process"
	}
	desc += " (" + agentSettings(o) + ")"
	if env.saslSSL != nil {
		desc += ", listening on PLAINTEXT and SASL_SSL (" + saslSSLMechanism + ", ECDSA P-256 certificate from internal/testcerts)"
	}
	env.started = append(env.started, desc)
	return env, nil
}

// agentArgs are the flags every agent we start gets, bucket and metastore
// aside.
func (e *benchEnv) agentArgs(o options, bucketURL, dbURL string) []string {
	args := []string{"agent",
		"--bucket-url", bucketURL,
		"--metastore-url", dbURL,
		"--log-format", "json",
		"--log-level", "warn",
	}
	if o.retentionDur > 0 {
		args = append(args, retentionAgentArgs(o)...)
	} else {
		// Compaction off: the write-path figures are of flush segments, and
		// the compaction phase runs it by itself (compaction.go).
		args = append(args, "--compaction-segment-bytes", "0")
	}
	for _, kv := range [][2]string{
		{"--flush-interval", o.flushInterval},
		{"--flush-bytes", o.flushBytes},
		{"--buffer-bytes", o.bufferBytes},
		{"--cache-memory-bytes", o.cacheBytes},
	} {
		if kv[1] != "" {
			args = append(args, kv[0], kv[1])
		}
	}
	return args
}

func agentSettings(o options) string {
	var set []string
	for _, kv := range [][2]string{
		{"flush.interval", o.flushInterval},
		{"flush.bytes", o.flushBytes},
		{"buffer.bytes", o.bufferBytes},
		{"cache.memory.bytes", o.cacheBytes},
	} {
		if kv[1] != "" {
			set = append(set, kv[0]+"="+kv[1])
		}
	}
	if len(set) == 0 {
		return "default settings"
	}
	return strings.Join(set, " ")
}

// waitForCluster waits until every agent lists every other one in its
// metadata, so zone pinning finds each zone's agent.
func (e *benchEnv) waitForCluster(ctx context.Context) error {
	if len(e.agents) < 2 {
		return nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, a := range e.agents {
		cl, err := kgo.NewClient(kgo.SeedBrokers(a.kafkaAddr))
		if err != nil {
			return err
		}
		for {
			mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			// A raw request: kadm's metadata is served from the
			// client's cache.
			md, err := kmsg.NewPtrMetadataRequest().RequestWith(mctx, cl)
			cancel()
			if err == nil && len(md.Brokers) >= len(e.agents) {
				break
			}
			if ctx.Err() != nil {
				cl.Close()
				return ctx.Err()
			}
			if time.Now().After(deadline) {
				cl.Close()
				return fmt.Errorf("agent %s did not see all %d agents within 60s (last error: %v)", a.id, len(e.agents), err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		cl.Close()
	}
	return nil
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

// startAgent runs `silt agent` (agent id bench-<i>, the given zone) on free
// local ports, with a SASL_SSL listener beside the PLAINTEXT one if
// withSASLSSL (e.saslSSL must be set), and waits until it answers; close
// sends it SIGTERM (SIGKILL after 20 s).
func (e *benchEnv) startAgent(ctx context.Context, i int, zone string, args []string, withSASLSSL bool, logf func(string, ...any)) (*agentProc, error) {
	kafkaAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	a := &agentProc{
		id: fmt.Sprintf("bench-%d", i), zone: zone,
		kafkaAddr: kafkaAddr, httpAddr: httpAddr,
		logPath: filepath.Join(e.tmpDir, fmt.Sprintf("agent-%d.log", i)),
		done:    make(chan struct{}),
	}
	if withSASLSSL {
		if a.saslSSLAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		args = append(args, e.saslSSL.listenerArgs(kafkaAddr, a.saslSSLAddr)...)
	} else {
		args = append(args, "--listen", kafkaAddr)
	}
	args = append(args, "--http-listen", httpAddr, "--agent-id", a.id, "--zone", zone)
	logFile, err := os.Create(a.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(os.Environ(), e.mio.Env()...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so Ctrl-C reaches only us and we stop it in
	// order; Pdeathsig in case we die without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	listening := kafkaAddr
	if a.saslSSLAddr != "" {
		listening += " and SASL_SSL " + a.saslSSLAddr
	}
	logf("starting silt agent %s (zone %s) on %s (http %s)", a.id, zone, listening, httpAddr)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start silt agent: %w", err)
	}
	a.pid = cmd.Process.Pid
	go func() {
		a.exitErr = cmd.Wait()
		close(a.done)
	}()
	e.onClose(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-a.done
		}
	})
	e.agents = append(e.agents, a)

	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr))
	if err != nil {
		return a, err
	}
	defer cl.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := cl.Ping(pctx)
		cancel()
		if err == nil {
			return a, nil
		}
		select {
		case <-a.done:
			return a, fmt.Errorf("silt agent %s exited during start: %v\n%s", a.id, a.exitErr, tail(a.logPath, 4096))
		case <-ctx.Done():
			return a, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return a, fmt.Errorf("silt agent %s did not answer within 60s: %v\n%s", a.id, err, tail(a.logPath, 4096))
		}
	}
}

// agentStatus fetches the agent's /status JSON, best effort: nil if there is
// no agent of ours or it does not answer JSON.
func agentStatus(ctx context.Context, a *agentProc) map[string]any {
	if a == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.httpAddr+"/status", nil)
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
