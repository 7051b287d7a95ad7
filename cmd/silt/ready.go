package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
)

// backendChecks probes what an agent needs to serve, for /readyz and
// /status: the metadata store answers, its schema is the one this build
// expects, and the bucket answers. Results are kept for ttl so that probes
// from kubelets and load balancers do not hammer Postgres or S3, and probes
// arriving while a check runs wait for it instead of starting their own.
type backendChecks struct {
	store      metastore.Store
	bucket     objectstore.Bucket
	wantSchema int
	ttl        time.Duration
	timeout    time.Duration // per backend

	mu     sync.Mutex // held while checking
	at     time.Time
	result checkResult
}

// checkResult is one round of checks.
type checkResult struct {
	Metastore componentCheck `json:"metastore"`
	Bucket    componentCheck `json:"bucket"`
}

// componentCheck is one backend's health.
type componentCheck struct {
	OK        bool    `json:"ok"`
	Error     string  `json:"error,omitempty"`
	LatencyMS float64 `json:"latency_ms"`
	// Metastore only.
	SchemaVersion     int `json:"schema_version,omitempty"`
	WantSchemaVersion int `json:"want_schema_version,omitempty"`
}

func (r checkResult) ok() bool { return r.Metastore.OK && r.Bucket.OK }

// failures lists what is wrong, one "component: reason" per entry.
func (r checkResult) failures() []string {
	var out []string
	if !r.Metastore.OK {
		out = append(out, "metastore: "+r.Metastore.Error)
	}
	if !r.Bucket.OK {
		out = append(out, "bucket: "+r.Bucket.Error)
	}
	return out
}

// newBackendChecks checks store against wantSchema, the version this build
// migrates it to (metastoreurl.LatestVersion).
func newBackendChecks(store metastore.Store, bucket objectstore.Bucket, wantSchema int) *backendChecks {
	return &backendChecks{
		store:      store,
		bucket:     bucket,
		wantSchema: wantSchema,
		ttl:        time.Second,
		timeout:    2 * time.Second,
	}
}

// check returns the latest results, checking again if they are older than
// ttl.
func (c *backendChecks) check(ctx context.Context) checkResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.ttl {
		return c.result
	}
	// The result is shared by every prober: one client hanging up must not
	// cut the check short for the others.
	ctx = context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	var res checkResult
	wg.Add(2)
	go func() { defer wg.Done(); res.Metastore = c.checkStore(ctx) }()
	go func() { defer wg.Done(); res.Bucket = c.checkBucket(ctx) }()
	wg.Wait()
	c.result, c.at = res, time.Now()
	return res
}

func (c *backendChecks) checkStore(ctx context.Context) componentCheck {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	v, err := c.store.SchemaVersion(ctx)
	cc := componentCheck{LatencyMS: msSince(start), SchemaVersion: v, WantSchemaVersion: c.wantSchema}
	switch {
	case err != nil:
		cc.Error = fmt.Sprintf("unreachable: %v", err)
	case v < c.wantSchema:
		cc.Error = fmt.Sprintf("schema version %d, this build needs %d (run silt migrate)", v, c.wantSchema)
	default:
		// A newer schema is a rolling upgrade in progress: migrations only
		// add, so this build keeps working.
		cc.OK = true
	}
	return cc
}

func (c *backendChecks) checkBucket(ctx context.Context) componentCheck {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	err := probeBucket(ctx, c.bucket)
	cc := componentCheck{LatencyMS: msSince(start), OK: err == nil}
	if err != nil {
		cc.Error = err.Error()
	}
	return cc
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// serveReady answers 200 when the agent is serving and its backends pass
// their checks, else 503 with the reasons, one per line.
func (s *statusServer) serveReady(w http.ResponseWriter, r *http.Request) {
	st := agentState(s.state.Load())
	if st != stateServing {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(st.String() + "\n"))
		return
	}
	if c := s.checks.Load(); c != nil {
		if res := c.check(r.Context()); !res.ok() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready\n" + strings.Join(res.failures(), "\n") + "\n"))
			return
		}
	}
	w.Write([]byte(st.String() + "\n"))
}

// components is /status per component.
type components struct {
	Agent     agentComponent  `json:"agent"`
	Metastore *componentCheck `json:"metastore,omitempty"`
	Bucket    *componentCheck `json:"bucket,omitempty"`
	Cache     *cacheComponent `json:"cache,omitempty"`
	Buffer    *bufferComp     `json:"buffer,omitempty"`
}

type agentComponent struct {
	OK          bool   `json:"ok"` // serving and every backend check passes
	State       string `json:"state"`
	Connections int    `json:"connections"`
}

type cacheComponent struct {
	Hits      int64 `json:"hits"`
	Misses    int64 `json:"misses"`
	Evictions int64 `json:"evictions"`
	Bytes     int64 `json:"bytes"`
}

type bufferComp struct {
	Bytes      int64 `json:"bytes"`
	LimitBytes int64 `json:"limit_bytes"`
}

func (s *statusServer) components(ctx context.Context) *components {
	st := agentState(s.state.Load())
	c := &components{Agent: agentComponent{State: st.String(), OK: st == stateServing}}
	if chk := s.checks.Load(); chk != nil {
		res := chk.check(ctx)
		c.Metastore, c.Bucket = &res.Metastore, &res.Bucket
		c.Agent.OK = c.Agent.OK && res.ok()
	}
	if a := s.agent.Load(); a != nil {
		c.Agent.Connections = a.ConnCount()
		cs := a.CacheStats()
		c.Cache = &cacheComponent{Hits: cs.Hits, Misses: cs.Misses, Evictions: cs.Evictions, Bytes: cs.Bytes}
		inUse, limit := a.BufferBytes()
		c.Buffer = &bufferComp{Bytes: inUse, LimitBytes: limit}
	}
	return c
}
