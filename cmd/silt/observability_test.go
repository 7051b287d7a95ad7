package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/internal/promtest"
	"github.com/siltstream/silt/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestBinaryObservability runs `silt agent` configured only by a YAML file
// against a real Postgres and MinIO, checks /livez, /readyz, /status and
// /metrics, and that /readyz turns 503 while Postgres is stopped or the
// bucket is unreachable and 200 again once they are back.
//
// Postgres is really stopped and restarted (a cluster of the test's own).
// MinIO is shared by the test binary, so the bucket outage is a TCP proxy
// in front of it that stops accepting and drops its connections: to the
// agent that is the same as MinIO going away.
func TestBinaryObservability(t *testing.T) {
	bin := buildSilt(t)
	pg := testenv.NewStoppablePostgres(t)
	mio := testenv.MinIO(t)
	_, bucketURL := mio.NewBucket(t)
	proxy := startTCPProxy(t, strings.TrimPrefix(mio.Endpoint, "http://"))
	bucketURL = strings.Replace(bucketURL, url.QueryEscape(mio.Endpoint), url.QueryEscape("http://"+proxy.addr), 1)

	kafkaAddr, httpAddr := freePort(t), freePort(t)
	cfgPath := filepath.Join(t.TempDir(), "silt.yaml")
	yaml := fmt.Sprintf(`listen: %s
agent:
  id: obs-1
http:
  listen: %s
bucket:
  url: %q
metastore:
  url: %q
flush:
  interval: 20ms
auto:
  create:
    topics: true
`, kafkaAddr, httpAddr, bucketURL, pg.URL("postgres"))
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "agent", "--config", cfgPath)
	cmd.Env = cleanEnv(mio.Env()...)
	stderr := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-waited
		}
		if t.Failed() {
			t.Logf("silt agent stderr:\n%s", stderr.String())
		}
	})

	base := "http://" + httpAddr
	waitReady := func(what string, want int) string {
		t.Helper()
		var code int
		var body string
		deadline := time.Now().Add(60 * time.Second)
		for {
			code, body = tryGet(base + "/readyz")
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /readyz stayed %d (%q), want %d", what, code, body, want)
			}
			select {
			case err := <-waited:
				t.Fatalf("silt agent exited: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitReady("start", 200)
	if code, body := httpGet(t, base+"/livez"); code != 200 {
		t.Errorf("/livez: %d %s", code, body)
	}

	// Traffic, then the metrics that must have moved.
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("obs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	cl.Close()
	if r := consumeOne(t, kafkaAddr, "obs"); string(r.Value) != "v0" {
		t.Errorf("consumed %q, want v0", r.Value)
	}
	m := promtest.Scrape(t, base+"/metrics")
	for _, s := range []string{
		"silt_produce_bytes_total", "silt_produce_records_total", "silt_fetch_bytes_total",
		`silt_s3_requests_total{op="put"}`, `silt_s3_request_duration_seconds_count{op="put"}`,
		"silt_flush_duration_seconds_count", "silt_flush_bytes_count", "silt_commit_duration_seconds_count",
		`silt_metastore_request_duration_seconds_count{op="commit_flush"}`,
		`silt_kafka_requests_total{api="Produce",error="NONE"}`,
		`silt_kafka_request_duration_seconds_count{api="Fetch"}`,
		"silt_topics", "silt_partitions", "silt_buffer_limit_bytes",
		`silt_build_info{version="` + versionString() + `"}`, "go_goroutines",
	} {
		if m[s] <= 0 {
			t.Errorf("%s = %v, want > 0", s, m[s])
		}
	}
	families := promtest.Families(m)
	for _, f := range []string{
		"silt_s3_request_errors_total", "silt_metastore_request_errors_total", "silt_cache_hits_total",
		"silt_cache_misses_total", "silt_cache_evictions_total", "silt_cache_bytes", "silt_buffer_bytes",
		"silt_connections", "silt_flush_upload_duration_seconds", "silt_index_lookups_total",
	} {
		if !families[f] {
			t.Errorf("metric family %s missing", f)
		}
	}
	for s := range m {
		if strings.Contains(s, `topic="`) || strings.Contains(s, `partition="`) {
			t.Errorf("per-topic or per-partition series %s", s)
		}
	}

	status := func() map[string]json.RawMessage {
		t.Helper()
		code, body := httpGet(t, base+"/status")
		var st struct {
			Components map[string]json.RawMessage `json:"components"`
		}
		if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
			t.Fatalf("/status: %d %v\n%s", code, err, body)
		}
		return st.Components
	}
	comps := status()
	for _, c := range []string{"agent", "metastore", "bucket", "cache", "buffer"} {
		if _, ok := comps[c]; !ok {
			t.Errorf("/status has no %s component: %v", c, comps)
		}
	}
	var meta componentCheck
	if err := json.Unmarshal(comps["metastore"], &meta); err != nil || !meta.OK || meta.SchemaVersion != meta.WantSchemaVersion || meta.SchemaVersion == 0 {
		t.Errorf("/status metastore: %s (%v)", comps["metastore"], err)
	}

	// Postgres down and back.
	pg.Stop(t)
	if body := waitReady("postgres stopped", 503); !strings.Contains(body, "metastore:") {
		t.Errorf("/readyz with postgres stopped says %q; want it to name the metastore", body)
	}
	if err := json.Unmarshal(status()["metastore"], &meta); err != nil || meta.OK {
		t.Errorf("/status metastore with postgres stopped: %+v (%v)", meta, err)
	}
	pg.Start(t)
	waitReady("postgres restarted", 200)

	// Bucket unreachable and back.
	proxy.cut()
	if body := waitReady("bucket unreachable", 503); !strings.Contains(body, "bucket:") {
		t.Errorf("/readyz with the bucket unreachable says %q; want it to name the bucket", body)
	}
	proxy.restore(t)
	waitReady("bucket reachable again", 200)

	// Still serving after both outages.
	cl, err = kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.DefaultProduceTopic("obs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after the outages: %v", err)
	}
	cl.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("silt agent after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("silt agent did not exit within 60s of SIGTERM")
	}
}

// tryGet is httpGet for polling: a failed request is status 0.
func tryGet(url string) (int, string) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// tcpProxy forwards connections on addr to target until cut, which closes
// the listener and every open connection; restore listens on addr again.
type tcpProxy struct {
	addr, target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: ln.Addr().String(), target: target, conns: make(map[net.Conn]struct{})}
	p.serve(ln)
	t.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.forward(c) }()
		}
	}()
}

func (p *tcpProxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // cut meanwhile
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

func (p *tcpProxy) restore(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy: listen on %s again: %v", p.addr, err)
	}
	p.serve(ln)
}
