package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/testenv"
	"github.com/twmb/franz-go/pkg/kgo"
)

// buildSilt returns the silt binary, built once per test binary.
func buildSilt(t *testing.T) string { return testenv.SiltBinary(t) }

// cleanEnv is the test's environment without SILT_ settings a developer
// may have exported.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SILT_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func TestBinaryRejectsBadConfig(t *testing.T) {
	bin := buildSilt(t)
	badYAML := filepath.Join(t.TempDir(), "silt.yaml")
	if err := os.WriteFile(badYAML, []byte("bucket:\n  url: mem://\nflush:\n  intervall: 1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"bad duration flag", []string{"agent", "--bucket-url", "mem://", "--metastore-url", "sqlite:///nonexistent/meta.db", "--flush-interval", "abc"}, nil, `flush.interval: invalid duration "abc"`},
		{"bad size env", []string{"agent", "--bucket-url", "mem://", "--metastore-url", "sqlite:///nonexistent/meta.db"}, []string{"SILT_FLUSH_BYTES=8XB"}, `flush.bytes: invalid size "8XB"`},
		{"unknown file key", []string{"agent", "--config", badYAML}, nil, "flush.intervall"},
		{"missing bucket", []string{"agent", "--metastore-url", "sqlite:///nonexistent/meta.db"}, nil, "bucket.url: required"},
		{"missing metastore", []string{"agent"}, []string{"SILT_BUCKET_URL=mem://"}, "metastore.url: required"},
		{"unknown flag", []string{"agent", "--flush-intervall", "1s"}, nil, "flush-intervall"},
		{"dev bad value", []string{"dev", "--num-partitions", "0"}, nil, "num.partitions"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bin, c.args...)
			cmd.Env = cleanEnv(c.env...)
			cmd.Dir = t.TempDir()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("silt %q: got %v, want exit status 2; stderr:\n%s", c.args, err, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Errorf("silt %q: stderr does not name %q:\n%s", c.args, c.want, stderr.String())
			}
		})
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// devProcess is a running `silt dev`.
type devProcess struct {
	cmd    *exec.Cmd
	stderr *testenv.SyncBuffer
	waited chan error
}

// startDev starts `silt dev` and waits for its "listening" line.
func startDev(t *testing.T, bin, dataDir, kafkaAddr, httpAddr string, extra ...string) *devProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"dev", "--data-dir", dataDir, "--listen", kafkaAddr,
		"--http-listen", httpAddr, "--flush-interval", "20ms", "--log-format", "text"}, extra...)...)
	cmd.Env = cleanEnv()
	p := &devProcess{cmd: cmd, stderr: &testenv.SyncBuffer{}, waited: make(chan error, 1)}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "silt dev: Kafka on") {
				ready <- sc.Text()
			}
		}
		io.Copy(io.Discard, stdout)
		p.waited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.waited
		}
		if t.Failed() {
			t.Logf("silt dev stderr:\n%s", p.stderr.String())
		}
	})
	select {
	case line := <-ready:
		if !strings.Contains(line, kafkaAddr) || !strings.Contains(line, dataDir) {
			t.Errorf("start line %q does not name %s and %s", line, kafkaAddr, dataDir)
		}
	case err := <-p.waited:
		p.waited <- err
		t.Fatalf("silt dev exited before serving: %v\n%s", err, p.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("silt dev did not report serving within 60s\n%s", p.stderr.String())
	}
	return p
}

// stop sends SIGTERM and requires exit status 0.
func (p *devProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.waited:
		if err != nil {
			t.Fatalf("silt dev after SIGTERM: %v, want exit status 0\n%s", err, p.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("silt dev did not exit within 60s of SIGTERM\n%s", p.stderr.String())
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// consumeOne reads the first record of topic from the start.
func consumeOne(t *testing.T, addr, topic string) *kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no record from %s within 30s", topic)
		}
		for _, fe := range fs.Errors() {
			t.Logf("fetch %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		if recs := fs.Records(); len(recs) > 0 {
			return recs[0]
		}
	}
}

// TestBinaryDev runs `silt dev`, produces to an auto-created topic with a
// real Kafka client, reads it back, stops with SIGTERM, restarts on the same
// data directory and reads the record again.
func TestBinaryDev(t *testing.T) {
	bin := buildSilt(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	kafkaAddr, httpAddr := freePort(t), freePort(t)
	p := startDev(t, bin, dataDir, kafkaAddr, httpAddr)

	if code, body := httpGet(t, "http://"+httpAddr+"/livez"); code != 200 {
		t.Errorf("/livez: %d %s", code, body)
	}
	if code, body := httpGet(t, "http://"+httpAddr+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.AllowAutoTopicCreation(),
		kgo.DefaultProduceTopic("demo"), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("hello silt")})
	cl.Close()
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if r := consumeOne(t, kafkaAddr, "demo"); string(r.Value) != "hello silt" || r.Offset != 0 {
		t.Errorf("consumed %q at offset %d, want \"hello silt\" at 0", r.Value, r.Offset)
	}

	code, body := httpGet(t, "http://"+httpAddr+"/status")
	var status struct {
		State   string `json:"state"`
		AgentID string `json:"agent_id"`
		Stats   struct {
			ProducedBatches int64 `json:"produced_batches"`
			Commits         int64 `json:"commits"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(body), &status); code != 200 || err != nil {
		t.Fatalf("/status: %d %v\n%s", code, err, body)
	}
	if status.State != "serving" || status.AgentID == "" || status.Stats.ProducedBatches < 1 || status.Stats.Commits < 1 {
		t.Errorf("/status after a produce: %s", body)
	}
	if code, _ := httpGet(t, "http://"+httpAddr+"/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ without http.pprof: %d, want 404", code)
	}
	p.stop(t)
	if _, err := os.Stat(filepath.Join(dataDir, "meta.db")); err != nil {
		t.Errorf("metastore not under the data dir: %v", err)
	}

	// Persistent across restarts; the profiler only when asked for.
	p = startDev(t, bin, dataDir, kafkaAddr, httpAddr, "--http-pprof")
	if r := consumeOne(t, kafkaAddr, "demo"); string(r.Value) != "hello silt" {
		t.Errorf("after restart consumed %q, want \"hello silt\"", r.Value)
	}
	if code, _ := httpGet(t, "http://"+httpAddr+"/debug/pprof/"); code != 200 {
		t.Errorf("/debug/pprof/ with http.pprof=true: %d, want 200", code)
	}
	p.stop(t)
}

func TestBinaryVersion(t *testing.T) {
	out, err := exec.Command(buildSilt(t), "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "silt ") {
		t.Fatalf("silt version: %q, %v", out, err)
	}
}
