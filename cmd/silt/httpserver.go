package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltstream/silt/agent"
)

// agentState is what /readyz and /status report.
type agentState int32

const (
	stateStarting agentState = iota
	stateServing
	stateDraining
)

func (s agentState) String() string {
	switch s {
	case stateServing:
		return "serving"
	case stateDraining:
		return "draining"
	default:
		return "starting"
	}
}

// statusServer is the agent's HTTP side: health, status, metrics and
// pprof, on a private mux so nothing registered on http.DefaultServeMux
// leaks out.
type statusServer struct {
	state   atomic.Int32
	agent   atomic.Pointer[agent.Agent]
	checks  atomic.Pointer[backendChecks] // nil: readiness is the state alone
	reg     *prometheus.Registry          // served on /metrics
	started time.Time
	info    atomic.Pointer[statusInfo]
	srv     *http.Server
	ln      net.Listener
	done    chan struct{}
}

// statusInfo is the static part of /status.
type statusInfo struct {
	Version   string `json:"version"`
	AgentID   string `json:"agent_id"`
	ClusterID string `json:"cluster_id"`
	Listen    string `json:"listen"`
	Advertise string `json:"advertise"`
	Zone      string `json:"zone,omitempty"`
	// Listeners are every Kafka listener: NAME (PROTOCOL) listen -> advertised.
	Listeners []string `json:"listeners,omitempty"`
}

// startStatusServer listens on addr and serves until close; /debug/pprof/
// only if pprof (http.pprof): profiles reveal a lot and cost CPU, so they
// are opt-in.
func startStatusServer(addr string, pprof bool, log *slog.Logger) (*statusServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &statusServer{started: time.Now(), ln: ln, done: make(chan struct{}), reg: newMetricsRegistry()}
	s.srv = &http.Server{
		Handler:           s.mux(log, pprof),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	paths := "/livez /readyz /status /metrics"
	if pprof {
		paths += " /debug/pprof/"
	}
	log.Info("serving HTTP", "listen", ln.Addr().String(), "paths", paths)
	return s, nil
}

func (s *statusServer) mux(log *slog.Logger, withPprof bool) *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	m.HandleFunc("GET /readyz", s.serveReady)
	m.HandleFunc("GET /status", s.serveStatus)
	m.Handle("GET /metrics", metricsHandler(s.reg, slog.NewLogLogger(log.Handler(), slog.LevelWarn)))
	if !withPprof {
		return m
	}
	m.HandleFunc("/debug/pprof/", pprof.Index)
	m.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	m.HandleFunc("/debug/pprof/profile", pprof.Profile)
	m.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	m.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return m
}

// statsJSON is a point-in-time copy of agent.Stats.
type statsJSON struct {
	Flushes         int64   `json:"flushes"`
	FlushBytes      int64   `json:"flush_bytes"`
	UploadSeconds   float64 `json:"upload_seconds"`
	Commits         int64   `json:"commits"`
	CommitSeconds   float64 `json:"commit_seconds"`
	ProducedBytes   int64   `json:"produced_bytes"`
	ProducedBatches int64   `json:"produced_batches"`
	FetchedBytes    int64   `json:"fetched_bytes"`
	IndexQueries    int64   `json:"index_queries"`
	IndexCacheHits  int64   `json:"index_cache_hits"`
}

func snapshotStats(st *agent.Stats) statsJSON {
	return statsJSON{
		Flushes:         st.Flushes.Load(),
		FlushBytes:      st.FlushBytes.Load(),
		UploadSeconds:   time.Duration(st.UploadNanos.Load()).Seconds(),
		Commits:         st.Commits.Load(),
		CommitSeconds:   time.Duration(st.CommitNanos.Load()).Seconds(),
		ProducedBytes:   st.ProducedBytes.Load(),
		ProducedBatches: st.ProducedBatchs.Load(),
		FetchedBytes:    st.FetchedBytes.Load(),
		IndexQueries:    st.IndexQueries.Load(),
		IndexCacheHits:  st.IndexCacheHits.Load(),
	}
}

func (s *statusServer) serveStatus(w http.ResponseWriter, r *http.Request) {
	body := struct {
		statusInfo
		State         string      `json:"state"`
		UptimeSeconds float64     `json:"uptime_seconds"`
		Stats         *statsJSON  `json:"stats,omitempty"`
		Components    *components `json:"components,omitempty"`
	}{
		State:         agentState(s.state.Load()).String(),
		UptimeSeconds: time.Since(s.started).Seconds(),
	}
	if info := s.info.Load(); info != nil {
		body.statusInfo = *info
	}
	if a := s.agent.Load(); a != nil {
		st := snapshotStats(a.Stats())
		body.Stats = &st
	}
	body.Components = s.components(r.Context())
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(body)
}

// setServing publishes the agent and its identity; /readyz turns 200.
func (s *statusServer) setServing(a *agent.Agent, info statusInfo) {
	s.info.Store(&info)
	s.agent.Store(a)
	s.state.Store(int32(stateServing))
}

func (s *statusServer) setDraining() { s.state.Store(int32(stateDraining)) }

// close stops the server, letting in-flight requests finish briefly.
func (s *statusServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.done
}
