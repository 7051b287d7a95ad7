package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/cache"
	"github.com/siltstream/silt/metastore/metastoreurl"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/bucketurl"
)

func newAgentCmd(stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Serve Kafka clients over an object-store bucket and a metadata store",
		Long: `Serve Kafka clients. Every setting is a key of one config tree, set by
flag (--flush-interval), environment (SILT_FLUSH_INTERVAL) or YAML file
(--config silt.yaml), in that order of precedence. bucket.url and
metastore.url are required. S3 credentials come from the AWS default chain.`,
		Args: cobra.NoArgs,
	}
	loader := newConfigLoader(cmd.Flags(), agentKeys())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		s, err := loadSettings(loader, stderr)
		if err != nil {
			return err
		}
		switch {
		case s.BucketURL == "":
			return configErrorf("bucket.url: required (--bucket-url or SILT_BUCKET_URL), e.g. s3://bucket/prefix?region=us-east-1")
		case s.MetastoreURL == "":
			return configErrorf("metastore.url: required (--metastore-url or SILT_METASTORE_URL), e.g. postgres://user@host:5432/silt")
		}
		log := newLogger(stderr, s.LogLevel, s.LogFormat)
		return runWithSignals(cmd.Context(), log, func(ctx context.Context) error {
			return serveAgent(ctx, s, log, nil)
		})
	}
	return cmd
}

// loadSettings resolves and parses the config tree of loader.
func loadSettings(loader *configLoader, stderr io.Writer) (settings, error) {
	raw, err := loader.load()
	if err != nil {
		return settings{}, err
	}
	return parseSettings(raw, isTerminal(stderr))
}

// isTerminal reports whether w is a character device (an interactive
// terminal), without a dependency on a terminal library.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func newLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// runWithSignals runs fn with a context cancelled by the first SIGTERM or
// SIGINT; fn is expected to shut down gracefully then. A second signal
// exits the process at once.
func runWithSignals(parent context.Context, log *slog.Logger, fn func(ctx context.Context) error) error {
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case sig := <-sigs:
			log.Info("signal received; shutting down gracefully (send again to exit at once)", "signal", sig.String())
			cancel()
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			log.Error("second signal received; exiting at once", "signal", sig.String())
			os.Exit(1)
		case <-done:
		}
	}()
	return fn(ctx)
}

// serveAgent opens the stores, serves Kafka and HTTP until ctx is done, then
// shuts down gracefully within shutdown.grace. onServing, if set, is called
// once the Kafka listener accepts connections.
func serveAgent(ctx context.Context, s settings, log *slog.Logger, onServing func(addr net.Addr)) error {
	var status *statusServer
	if s.HTTPListen != "" {
		var err error
		if status, err = startStatusServer(s.HTTPListen, s.HTTPPprof, log); err != nil {
			return fmt.Errorf("http.listen: %w", err)
		}
		defer status.close()
	}

	metaURL := redactURL(s.MetastoreURL)
	if err := metastoreurl.Migrate(ctx, s.MetastoreURL); err != nil {
		return fmt.Errorf("migrate metastore %s: %w", metaURL, err)
	}
	store, err := metastoreurl.Open(ctx, s.MetastoreURL)
	if err != nil {
		return fmt.Errorf("open metastore %s: %w", metaURL, err)
	}
	defer store.Close()
	wantSchema, err := metastoreurl.LatestVersion(s.MetastoreURL)
	if err != nil {
		return fmt.Errorf("metastore %s: %w", metaURL, err)
	}

	bucketURL := redactURL(s.BucketURL)
	bucket, err := bucketurl.Open(ctx, s.BucketURL)
	if err != nil {
		return fmt.Errorf("open bucket %s: %w", bucketURL, err)
	}
	defer bucket.Close()
	if err := probeBucket(ctx, bucket); err != nil {
		return fmt.Errorf("bucket %s: %w", bucketURL, err)
	}
	reg := newMetricsRegistry()
	if status != nil {
		reg = status.reg
	}
	mstore, mbucket, err := instrument(reg, store, bucket)
	if err != nil {
		return err
	}

	cfg := s.Agent
	cfg.Logger = log
	// The real addresses matter when a port was 0 or a host unspecified.
	lns, err := bindListeners(&cfg)
	if err != nil {
		return err
	}
	ln := lns[0]
	// Validate fills the derived agent id here, so /status reports the id
	// the agent runs with.
	if err := cfg.Validate(); err != nil {
		closeListeners(lns)
		return &configError{err}
	}
	if plan, set := applyMemoryLimit(&cfg, &s.Cache); set {
		log.Info("Go memory limit set to the agent's budgets (set GOMEMLIMIT to override)", "bytes", plan.limit,
			"runtime_reserve_from_buffer", plan.bufferReserve, "runtime_reserve_from_cache", plan.cacheReserve)
	}
	// The cache is ours: the agent reads and writes through it, and we stop
	// it (read-ahead, disk writes) once the agent has stopped.
	cb, err := cache.New(mbucket, s.Cache)
	if err != nil {
		closeListeners(lns)
		return &configError{err}
	}
	defer cb.Stop()
	a, err := agent.New(cfg, cb, mstore)
	if err != nil {
		closeListeners(lns)
		return &configError{err}
	}
	if err := a.RegisterMetrics(reg); err != nil {
		a.Close()
		closeListeners(lns)
		return fmt.Errorf("register agent metrics: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- a.ServeListeners(lns...) }()
	if status != nil {
		// Probes go to the store and the driver directly, not through
		// the instrumented wrappers, so they do not show up as traffic.
		status.checks.Store(newBackendChecks(store, bucket, wantSchema))
		status.setServing(a, statusInfo{
			Version: versionString(), AgentID: cfg.ID, ClusterID: cfg.ClusterID,
			Listen: cfg.Listen, Advertise: cfg.Advertise, Zone: cfg.Zone,
			Listeners: describeListeners(a.Listeners()),
		})
	}
	if onServing != nil {
		onServing(ln.Addr())
	}

	select {
	case err := <-served:
		// The listener failed for good; stop hard.
		a.Close()
		return fmt.Errorf("serve Kafka: %w", err)
	case <-ctx.Done():
	}
	if status != nil {
		status.setDraining()
	}
	log.Info("draining: flushing buffered writes and answering in-flight requests", "grace", cfg.ShutdownGrace.String())
	start := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	err = a.Shutdown(sctx)
	if serr := <-served; serr != nil && err == nil {
		err = fmt.Errorf("serve Kafka: %w", serr)
	}
	if err != nil {
		return err
	}
	log.Info("stopped", "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// probeBucket fails clearly when the bucket is missing or the credentials
// are refused, instead of at the first produce. A List (not a Head) because
// S3 answers HEAD on a missing bucket with a bare 404.
func probeBucket(ctx context.Context, b objectstore.Bucket) error {
	errStop := errors.New("stop")
	err := b.List(ctx, "_silt/probe/", func(objectstore.Attrs) error { return errStop })
	switch {
	case err == nil || errors.Is(err, errStop):
		return nil
	case objectstore.IsBucketNotFound(err):
		return fmt.Errorf("bucket does not exist (create it first): %w", err)
	case objectstore.IsAccessDenied(err):
		return fmt.Errorf("access denied (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the instance role): %w", err)
	default:
		return fmt.Errorf("unreachable: %w", err)
	}
}

// defaultAdvertise is the listen address, or the hostname with the listen
// port when listening on all interfaces (clients cannot dial 0.0.0.0).
func defaultAdvertise(addr *net.TCPAddr) string {
	if addr.IP.IsUnspecified() {
		if host, err := os.Hostname(); err == nil && host != "" {
			return net.JoinHostPort(host, strconv.Itoa(addr.Port))
		}
	}
	return addr.String()
}

func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// redactURL hides a password in a store URL for error messages and logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
