// Command silt-bench measures a Silt agent against its floor, the object
// store it writes to: raw MinIO PUT/GET throughput with 4 MiB objects, then
// produce throughput (1 KiB records, acks=all), produce latency and
// end-to-end latency at fixed rates through one agent, and prints a table of
// each figure beside its floor.
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
	partitions    int
	recordSize    int
	producers     int
	linger        time.Duration
	idempotent    bool
	topic         string
	latencyDur    time.Duration
	rate          float64
	lowRate       float64
	flushInterval string
	flushBytes    string
	siltBin       string
	keepLogs      bool
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
	fs.IntVar(&o.partitions, "partitions", 64, "partitions of the benchmark topic")
	fs.IntVar(&o.recordSize, "record-size", 1024, "record value size in bytes")
	fs.IntVar(&o.producers, "producers", 4, "producer clients in the throughput measurement")
	fs.DurationVar(&o.linger, "linger", 10*time.Millisecond, "producer linger")
	fs.BoolVar(&o.idempotent, "idempotent", true, "use kgo's default idempotent producer (false: DisableIdempotentWrite)")
	fs.StringVar(&o.topic, "topic", "", "topic name (default silt-bench-<unix time>; created if missing)")
	fs.DurationVar(&o.latencyDur, "latency-duration", 10*time.Second, "duration of each fixed-rate latency measurement")
	fs.Float64Var(&o.rate, "rate", 5, "fixed produce rate in MB/s (10^6 bytes) for the latency measurement; 1 MB/s is measured too")
	fs.StringVar(&o.flushInterval, "flush-interval", "", "passed to the agent as --flush-interval (default: the agent's)")
	fs.StringVar(&o.flushBytes, "flush-bytes", "", "passed to the agent as --flush-bytes (default: the agent's)")
	fs.StringVar(&o.siltBin, "silt-bin", "", "use this silt binary instead of building ./cmd/silt")
	fs.BoolVar(&o.keepLogs, "keep-logs", false, "keep the agent's log file and print its path")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	o.lowRate = 1
	switch {
	case o.recordSize < 16:
		return o, errors.New("--record-size must be at least 16 (the send timestamp is in the value)")
	case o.partitions < 1, o.producers < 1, o.floorWorkers < 1, o.objectSize < 1, o.smallObjectSize < 1:
		return o, errors.New("--partitions, --producers, --floor-workers, --object-size and --small-object-size must be positive")
	case o.rate <= 0:
		return o, errors.New("--rate must be positive")
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
	stopSignals()
	switch {
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "silt-bench: interrupted; everything started was stopped")
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
	progress("produce: max throughput, %d producers, %s records, %s", o.producers, sizeString(o.recordSize), o.duration)
	tp, err := measureThroughput(ctx, env.brokers, o)
	if err != nil {
		return fmt.Errorf("measure produce throughput: %w", err)
	}
	rep.throughput = &tp

	for _, rate := range latencyRates(o) {
		progress("latency: %.3g MB/s for %s", rate, o.latencyDur)
		l, err := measureLatency(ctx, env.brokers, o, rate)
		if err != nil {
			return fmt.Errorf("measure latency at %.3g MB/s: %w", rate, err)
		}
		rep.latency = append(rep.latency, l)
	}
	rep.agentStatus = env.agentStatus(ctx)
	rep.print(os.Stdout)
	return nil
}

func latencyRates(o options) []float64 {
	if o.rate == o.lowRate {
		return []float64{o.rate}
	}
	return []float64{o.lowRate, o.rate}
}

// progress reports what the benchmark is doing on stderr, so stdout holds
// only the report.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "silt-bench: "+format+"\n", args...)
}
