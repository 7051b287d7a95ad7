// Command silt-bench measures a Silt agent against its floor, the object
// store it writes to: raw MinIO PUT/GET throughput with 4 MiB objects, then
// produce throughput (1 KiB records, acks=all; again over the agents'
// SASL_SSL listener, beside plaintext), produce latency and end-to-end
// latency at fixed rates (tail consumers on the writing agent and, with two
// agents or more, on another one), and prints a table of each figure beside
// its floor.
//
// By default it starts everything itself — MinIO (the pinned binary under
// .bin/), a throwaway Postgres cluster and one `silt agent` built from
// ./cmd/silt — and stops it all when done or interrupted:
//
//	go run ./cmd/silt-bench
//
// With --brokers it benchmarks an existing cluster instead; the raw floor is
// then measured only if --s3-endpoint and --s3-bucket are given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	brokers string

	s3Endpoint, s3Bucket, s3Region, s3AccessKey, s3SecretKey string

	floorDuration   time.Duration
	floorWorkers    int
	objectSize      int
	smallObjectSize int

	duration      time.Duration
	saslSSL       bool // also measure max produce throughput over SASL_SSL
	partitions    int
	recordSize    int
	producers     int
	linger        time.Duration
	idempotent    bool
	topic         string
	latencyDur    time.Duration
	ratesFlag     string
	rates         []float64
	flushInterval string
	flushBytes    string
	bufferBytes   string
	cacheBytes    string
	siltBin       string
	keepLogs      bool

	agents int    // agents to start
	zones  string // --brokers: writer,reader zones

	catchupFlag  string
	catchupBytes int64

	overloadDur        time.Duration
	sessionDur         time.Duration
	sessionPartitions  int
	overloadUploadMBps float64
	overloadPartitions int
	overloadProducers  int
	overloadMaxUploads int

	// Retention mode: does retention hold the bucket flat (retention.go).
	retentionDur         time.Duration
	retentionRate        float64
	retentionWindow      time.Duration
	retentionPartitions  int
	retentionSampleEvery time.Duration
	retentionSegment     string
	lifecycleInterval    time.Duration
	gcGrace              time.Duration

	// Compatibility mode: run franz-go's own kgo tests against the agents.
	kgoTest       string
	kgoRun        string
	kgoRuns       int
	kgoRecords    int
	kgoChurn      bool
	kgoChurnAfter time.Duration
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("silt-bench", flag.ContinueOnError)
	fs.StringVar(&o.brokers, "brokers", "", "benchmark an existing cluster at host:port,... instead of starting MinIO, Postgres and an agent")
	fs.StringVar(&o.s3Endpoint, "s3-endpoint", "", "with --brokers: S3 endpoint (http://host:port) to measure the raw floor against")
	fs.StringVar(&o.s3Bucket, "s3-bucket", "", "with --brokers: existing bucket for the raw floor (objects under silt-bench-floor/ are written and deleted)")
	fs.StringVar(&o.s3Region, "s3-region", envOr("AWS_REGION", "us-east-1"), "with --brokers: S3 region")
	fs.StringVar(&o.s3AccessKey, "s3-access-key", os.Getenv("AWS_ACCESS_KEY_ID"), "with --brokers: S3 access key (default $AWS_ACCESS_KEY_ID)")
	fs.StringVar(&o.s3SecretKey, "s3-secret-key", os.Getenv("AWS_SECRET_ACCESS_KEY"), "with --brokers: S3 secret key (default $AWS_SECRET_ACCESS_KEY)")
	fs.DurationVar(&o.floorDuration, "floor-duration", 5*time.Second, "duration of each raw PUT and GET measurement")
	fs.IntVar(&o.floorWorkers, "floor-workers", 4, "concurrent raw PUT/GET workers")
	fs.IntVar(&o.objectSize, "object-size", 4<<20, "raw floor object size in bytes")
	fs.IntVar(&o.smallObjectSize, "small-object-size", 256<<10, "object size of the sequential raw PUT latency floor (about one flush's segment at the latency rates)")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "duration of the max produce throughput measurement")
	fs.BoolVar(&o.saslSSL, "sasl-ssl", true, "repeat the max produce throughput measurement over the agents' SASL_SSL listener (TLS, SCRAM-SHA-512); false skips it")
	fs.IntVar(&o.partitions, "partitions", 64, "partitions of the benchmark topic")
	fs.IntVar(&o.recordSize, "record-size", 1024, "record value size in bytes")
	fs.IntVar(&o.producers, "producers", 4, "producer clients in the throughput measurement")
	fs.DurationVar(&o.linger, "linger", 10*time.Millisecond, "producer linger")
	fs.BoolVar(&o.idempotent, "idempotent", true, "use kgo's default idempotent producer (false: DisableIdempotentWrite)")
	fs.StringVar(&o.topic, "topic", "", "topic name (default silt-bench-<unix time>; created if missing)")
	fs.DurationVar(&o.latencyDur, "latency-duration", 10*time.Second, "duration of each fixed-rate latency measurement")
	fs.StringVar(&o.ratesFlag, "rates", "1,5,20", "fixed produce rates in MB/s (10^6 bytes) for the latency measurements, comma-separated")
	fs.StringVar(&o.flushInterval, "flush-interval", "", "passed to the agent as --flush-interval (default: the agent's)")
	fs.StringVar(&o.flushBytes, "flush-bytes", "", "passed to the agent as --flush-bytes (default: the agent's)")
	fs.StringVar(&o.bufferBytes, "buffer-bytes", "", "passed to the agents as --buffer-bytes, e.g. 64MiB (default: the agent's, 128MiB)")
	fs.StringVar(&o.cacheBytes, "cache-memory-bytes", "", "passed to the agents as --cache-memory-bytes, e.g. 128MiB (default: the agent's, 256MiB)")
	fs.IntVar(&o.agents, "agents", 2, "agents to start (one cluster); the second serves the other-agent tail consumer and the cold catch-up read")
	fs.StringVar(&o.zones, "zones", "", "with --brokers: writer,reader zones to pin clients to (client.id silt_az=<zone>); empty: no pinning, one tail consumer")
	fs.StringVar(&o.catchupFlag, "catchup-bytes", "1GiB", "bytes written to a fresh topic and read back cold from its start on another agent; 0 skips")
	fs.DurationVar(&o.sessionDur, "session-duration", 15*time.Second, "duration of the fetch-session phase (Fetch request bytes of a consumer with and one without KIP-227 sessions); 0 skips it")
	fs.IntVar(&o.sessionPartitions, "session-partitions", 1000, "partitions the fetch-session consumers tail")
	fs.DurationVar(&o.overloadDur, "overload-duration", 20*time.Second, "duration of the overload (RSS) phase; 0 skips it")
	fs.Float64Var(&o.overloadUploadMBps, "overload-upload-mbps", 0, "bandwidth cap in MB/s of the proxy between the overload agent and MinIO (default: max produce throughput / 4)")
	fs.IntVar(&o.overloadPartitions, "overload-partitions", 256, "partitions of the overload topic")
	fs.IntVar(&o.overloadProducers, "overload-producers", 8, "producer clients in the overload phase")
	fs.IntVar(&o.overloadMaxUploads, "overload-max-uploads", 1, "the overload agent's --flush-max-uploads")
	fs.StringVar(&o.kgoTest, "kgo-test", "", "compatibility mode instead of benchmarks: run this franz-go kgo test binary (go test -c -o kgo.test github.com/twmb/franz-go/pkg/kgo) against the agents, --kgo-runs times")
	fs.StringVar(&o.kgoRun, "kgo-run", "TestGroupETL|TestTxnEtl", "with --kgo-test: the -test.run pattern")
	fs.IntVar(&o.kgoRuns, "kgo-runs", 10, "with --kgo-test: how many runs")
	fs.IntVar(&o.kgoRecords, "kgo-records", 0, "with --kgo-test: KGO_TEST_RECORDS (0: the tests' default)")
	fs.BoolVar(&o.kgoChurn, "kgo-churn", false, "with --kgo-test: during each run, stop the oldest agent (SIGTERM) and start a new one")
	fs.DurationVar(&o.kgoChurnAfter, "kgo-churn-after", 5*time.Second, "with --kgo-churn: how long into each run the agent is stopped")
	fs.DurationVar(&o.retentionDur, "retention-duration", 0, "retention mode instead of benchmarks: produce to a topic with retention.ms, then one with retention.bytes, this long each, listing the bucket as it goes")
	fs.Float64Var(&o.retentionRate, "retention-rate", 2, "with --retention-duration: produce rate in MB/s")
	fs.DurationVar(&o.retentionWindow, "retention-window", time.Minute, "with --retention-duration: retention.ms, and retention.bytes as this long of writes")
	fs.IntVar(&o.retentionPartitions, "retention-partitions", 4, "with --retention-duration: partitions of the topics")
	fs.DurationVar(&o.retentionSampleEvery, "retention-sample-every", 10*time.Second, "with --retention-duration: how often the bucket is listed")
	fs.StringVar(&o.retentionSegment, "retention-compaction-segment-bytes", "0", "with --retention-duration: the agents' compaction.segment.bytes (0: compaction off)")
	fs.DurationVar(&o.lifecycleInterval, "retention-compaction-interval", 10*time.Second, "with --retention-duration: the agents' compaction.interval (retention and GC run at it)")
	fs.DurationVar(&o.gcGrace, "retention-gc-grace", 30*time.Second, "with --retention-duration: the agents' gc.grace")
	fs.StringVar(&o.siltBin, "silt-bin", "", "use this silt binary instead of building ./cmd/silt")
	fs.BoolVar(&o.keepLogs, "keep-logs", false, "keep the agent's log file and print its path")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	for _, f := range strings.Split(o.ratesFlag, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r <= 0 {
			return o, fmt.Errorf("--rates: %q is not a positive number", f)
		}
		o.rates = append(o.rates, r)
	}
	var err error
	if o.catchupBytes, err = parseSize(o.catchupFlag); err != nil {
		return o, fmt.Errorf("--catchup-bytes: %w", err)
	}
	for _, s := range []struct{ name, v string }{
		{"--flush-bytes", o.flushBytes}, {"--buffer-bytes", o.bufferBytes}, {"--cache-memory-bytes", o.cacheBytes},
	} {
		if s.v == "" {
			continue
		}
		if _, err := parseSize(s.v); err != nil {
			return o, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	switch {
	case o.recordSize < 16:
		return o, errors.New("--record-size must be at least 16 (the send timestamp is in the value)")
	case o.partitions < 1, o.producers < 1, o.floorWorkers < 1, o.objectSize < 1, o.smallObjectSize < 1:
		return o, errors.New("--partitions, --producers, --floor-workers, --object-size and --small-object-size must be positive")
	case o.agents < 1 && o.brokers == "":
		return o, errors.New("--agents must be at least 1")
	case o.sessionPartitions < 1:
		return o, errors.New("--session-partitions must be positive")
	case o.overloadPartitions < 1, o.overloadProducers < 1, o.overloadMaxUploads < 1:
		return o, errors.New("--overload-partitions, --overload-producers and --overload-max-uploads must be positive")
	}
	if o.topic == "" {
		o.topic = fmt.Sprintf("silt-bench-%d", time.Now().Unix())
	}
	return o, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "silt-bench:", err)
		os.Exit(2)
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o)
	interrupted := ctx.Err() != nil // before stopSignals, which cancels ctx
	stopSignals()
	switch {
	case err != nil && interrupted:
		fmt.Fprintf(os.Stderr, "silt-bench: interrupted (%v); everything started was stopped\n", err)
		os.Exit(130)
	case err != nil:
		fmt.Fprintln(os.Stderr, "silt-bench:", err)
		os.Exit(1)
	}
}

// run starts (or finds) the system under test, measures, and prints the
// report. Everything it starts is stopped before it returns.
func run(ctx context.Context, o options) error {
	rep := newReport(o)
	defer func() {
		// Interrupted part-way: show what was measured.
		if ctx.Err() != nil && (rep.floor != nil || rep.throughput != nil) {

			rep.print(os.Stdout)
		}
	}()
	env, err := setUp(ctx, o, progress)
	if env != nil {
		defer env.close()
	}
	if err != nil {
		return err
	}
	rep.setup = env.describe()
	if o.kgoTest != "" {
		return runCompat(ctx, o, env, progress)
	}
	if o.retentionDur > 0 {
		return runRetention(ctx, o, env)
	}

	if o.brokers != "" {
		rep.skipped = append(rep.skipped, "--brokers: per-agent counters (S3 requests, metastore calls per GiB and per fetch) need the agents' /metrics and are not shown")
		if env.readerZone == "" {
			rep.skipped = append(rep.skipped, "--brokers without --zones writer,reader: one tail consumer, not pinned; the catch-up read may hit the writing agent's cache")
		}
	}
	if env.s3 != nil {
		progress("floor: raw PUT/GET of %s objects, %d workers, %s each; then sequential %s PUTs", sizeString(o.objectSize), o.floorWorkers, o.floorDuration, sizeString(o.smallObjectSize))
		f, err := measureFloor(ctx, env.s3, o)
		if err != nil {
			return fmt.Errorf("measure floor: %w", err)
		}
		rep.floor = &f
	}

	if err := createTopic(ctx, env.brokers, o.topic, o.partitions); err != nil {
		return err
	}
	writer := env.agent(0)
	progress("produce: max throughput, %d producers, %s records, %s", o.producers, sizeString(o.recordSize), o.duration)
	before := scrapeAgent(ctx, writer)
	tp, err := measureThroughput(ctx, env.brokers, o, env.writerZone)
	if err != nil {
		return fmt.Errorf("measure produce throughput: %w", err)
	}
	rep.throughput = &tp
	if writer != nil {
		c := countersBetween(writer.id, before, scrapeAgent(ctx, writer))
		rep.writeCounters = &c
	}
	switch {
	case !o.saslSSL:
		rep.skipped = append(rep.skipped, "produce throughput over SASL_SSL: skipped (--sasl-ssl=false)")
	case env.saslSSL == nil:
		rep.skipped = append(rep.skipped, "produce throughput over SASL_SSL: skipped with --brokers (it needs agents of its own with a SASL_SSL listener and a SCRAM user)")
	default:
		progress("produce: max throughput over SASL_SSL (%s), %d producers, %s records, %s", saslSSLMechanism, o.producers, sizeString(o.recordSize), o.duration)
		ts, err := measureThroughputSASLSSL(ctx, env, o)
		if err != nil {
			return fmt.Errorf("measure produce throughput over SASL_SSL: %w", err)
		}
		rep.saslSSL = &ts
	}

	tails := []tailSpec{{name: "writing agent", zone: env.writerZone, agent: 0}}
	if env.readerZone != "" && env.readerZone != env.writerZone {
		tails = append(tails, tailSpec{name: "other agent", zone: env.readerZone, agent: 1})
	}
	if env.writerZone == "" {
		tails[0].name = "any agent"
	}
	if len(env.agents) == 0 {
		for i := range tails {
			tails[i].agent = -1
		}
	}
	for _, rate := range o.rates {
		progress("latency: %.3g MB/s for %s, %d tail consumers", rate, o.latencyDur, len(tails))
		snaps := make([]metricSnap, len(env.agents))
		for i, a := range env.agents {
			snaps[i] = scrapeAgent(ctx, a)
		}
		l, err := measureLatency(ctx, env.brokers, o, rate, env.writerZone, tails)
		if err != nil {
			return fmt.Errorf("measure latency at %.3g MB/s: %w", rate, err)
		}
		for i, a := range env.agents {
			c := countersBetween(a.id, snaps[i], scrapeAgent(ctx, a))
			for j := range l.tails {
				if l.tails[j].agent == i {
					l.tails[j].counters = &c
				}
			}
			if i == 0 {
				l.writer = &c
			}
		}
		rep.latency = append(rep.latency, l)
	}

	if o.catchupBytes > 0 {
		c, err := measureCatchup(ctx, env, o)
		if err != nil {
			return fmt.Errorf("measure catch-up read: %w", err)
		}
		rep.catchup = &c
		if env.dbURL != "" && env.mio != nil {
			cr, err := measureCompaction(ctx, env, o, c, progress)
			if err != nil {
				return fmt.Errorf("measure compaction: %w", err)
			}
			rep.compaction = &cr
		} else {
			rep.skipped = append(rep.skipped, "compaction: skipped (an existing cluster: its database and bucket are not ours to compact)")
		}
	}

	if o.sessionDur > 0 {
		fsr, err := measureFetchSessions(ctx, env, o)
		if err != nil {
			return fmt.Errorf("measure fetch sessions: %w", err)
		}
		rep.sessions = &fsr
	} else {
		rep.skipped = append(rep.skipped, "fetch sessions: skipped (--session-duration 0)")
	}

	// Statuses before the overload agent joins the list.
	for _, a := range env.agents {
		rep.agentStatus = append(rep.agentStatus, namedStatus{a.id + " (zone " + a.zone + ")", agentStatus(ctx, a)})
	}
	switch {
	case o.overloadDur <= 0:
		rep.skipped = append(rep.skipped, "overload (RSS): skipped (--overload-duration 0)")
	case env.mio == nil:
		rep.skipped = append(rep.skipped, "overload (RSS): skipped with --brokers (it starts its own agent behind a throttled MinIO and reads its /proc)")
	default:
		offered := 0.0
		if rep.throughput != nil {
			offered = rep.throughput.mbps()
		}
		ov, err := measureOverload(ctx, env, o, offered, progress)
		if err != nil {
			return fmt.Errorf("measure memory under overload: %w", err)
		}
		rep.overload = &ov
	}
	rep.print(os.Stdout)
	return nil
}

// scrapeAgent scrapes a's /metrics; nil if a is nil.
func scrapeAgent(ctx context.Context, a *agentProc) metricSnap {
	if a == nil {
		return nil
	}
	return scrapeMetrics(ctx, a.httpAddr)
}

// progress reports what the benchmark is doing on stderr, so stdout holds
// only the report.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "silt-bench: "+format+"\n", args...)
}

// parseSize reads a byte count: a plain number, or one with a KB/MB/GB
// (10^3…) or KiB/MiB/GiB (2^10…) suffix.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
	} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 1GiB, 512MiB, 100MB)", s)
	}
	return int64(f * float64(mult)), nil
}

// sizeOr is the parsed size of s, or def if s is empty.
func sizeOr(s string, def int64) int64 {
	if s == "" {
		return def
	}
	n, _ := parseSize(s) // validated by parseFlags
	return n
}
