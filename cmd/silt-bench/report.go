package main

// The report: one aligned plain-text table of every figure beside its
// floor, the machine it ran on, and the agent's own counters.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

type latencies []time.Duration

// percentile returns the p-th percentile (0 < p ≤ 100), nearest rank.
func (l latencies) percentile(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// mbPerSec is in MB/s of 10^6 bytes, the unit the whole report uses.
func mbPerSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / 1e6 / d.Seconds()
}

func sizeString(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

type report struct {
	o           options
	started     time.Time
	setup       string
	floor       *floorResult
	throughput  *throughputResult
	latency     []latencyResult
	agentStatus map[string]any
}

func newReport(o options) *report { return &report{o: o, started: time.Now()} }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

func ratio(v, floor float64) string {
	if floor <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v/floor)
}

func (r *report) print(w io.Writer) {
	o := r.o
	fmt.Fprintf(w, "\nSilt benchmark, %s\n", r.started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "machine: %s, %d CPUs, GOMAXPROCS=%d, %s/%s, %s\n",
		cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(w, "command: %s\n", commandLine())
	fmt.Fprintf(w, "setup:   %s\n", r.setup)
	fmt.Fprintf(w, "units:   MB = 10^6 bytes; payloads random (incompressible)")
	if r.floor != nil {
		fmt.Fprintf(w, "; floors measured with minio-go:\n")
		fmt.Fprintf(w, "         throughput vs raw %s PUTs (%d workers), latency vs sequential raw %s PUTs",
			sizeString(o.objectSize), o.floorWorkers, sizeString(o.smallObjectSize))
	}
	fmt.Fprint(w, "\n\n")

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\tfloor\tratio")
	fmt.Fprintln(tw, "------\t-----\t-----\t-----")
	var putMBps, getMBps float64
	var putP50, putP99 time.Duration
	if f := r.floor; f != nil {
		putMBps, getMBps = f.put.mbps(), f.get.mbps()
		putP50, putP99 = f.small.lat.percentile(50), f.small.lat.percentile(99)
		fmt.Fprintf(tw, "raw PUT throughput, %s x %d\t%.1f MB/s (%d objects)\t\t\n", sizeString(o.objectSize), o.floorWorkers, putMBps, f.put.ops)
		fmt.Fprintf(tw, "raw GET throughput, %s x %d\t%.1f MB/s (%d objects)\t\t\n", sizeString(o.objectSize), o.floorWorkers, getMBps, f.get.ops)
		fmt.Fprintf(tw, "raw PUT latency p50 / p99, %s x %d\t%s / %s\t\t\n", sizeString(o.objectSize), o.floorWorkers,
			ms(f.put.lat.percentile(50)), ms(f.put.lat.percentile(99)))
		fmt.Fprintf(tw, "raw PUT latency p50 / p99, %s x 1\t%s / %s\t\t\n", sizeString(f.smallSize), ms(putP50), ms(putP99))
	} else {
		fmt.Fprintln(tw, "raw PUT/GET (floor)\tnot measured (no --s3-endpoint/--s3-bucket)\t\t")
	}
	if t := r.throughput; t != nil {
		fmt.Fprintf(tw, "produce throughput, max\t%.1f MB/s (%.0f records/s)\t%s\t%s\n",
			t.mbps(), t.recordsPerSec(), floorString(putMBps, "MB/s PUT"), ratio(t.mbps(), putMBps))
	}
	for _, l := range r.latency {
		at := fmt.Sprintf("@ %.3g MB/s", l.rate)
		fmt.Fprintf(tw, "produce latency p50 %s\t%s\t%s\t%s\n", at, ms(l.produce.percentile(50)),
			floorMs(putP50, "PUT p50"), ratio(float64(l.produce.percentile(50)), float64(putP50)))
		fmt.Fprintf(tw, "produce latency p99 %s\t%s\t%s\t%s\n", at, ms(l.produce.percentile(99)),
			floorMs(putP99, "PUT p99"), ratio(float64(l.produce.percentile(99)), float64(putP99)))
		fmt.Fprintf(tw, "end-to-end latency p50 %s\t%s\t%s\t%s\n", at, ms(l.e2e.percentile(50)),
			floorMs(putP50, "PUT p50"), ratio(float64(l.e2e.percentile(50)), float64(putP50)))
		fmt.Fprintf(tw, "end-to-end latency p99 %s\t%s\t%s\t%s\n", at, ms(l.e2e.percentile(99)),
			floorMs(putP99, "PUT p99"), ratio(float64(l.e2e.percentile(99)), float64(putP99)))
	}
	tw.Flush()

	fmt.Fprintln(w)
	if t := r.throughput; t != nil {
		idem := "idempotent producer (kgo default)"
		if !t.idempotent {
			idem = "non-idempotent producer (DisableIdempotentWrite)"
		}
		fmt.Fprintf(w, "throughput: %d producer clients, %s records, acks=all, linger %s, no client compression, %s, %d partitions, %s\n",
			t.producers, sizeString(o.recordSize), o.linger, idem, o.partitions, t.elapsed)
		if t.note != "" {
			fmt.Fprintf(w, "  note: %s\n", t.note)
		}
	}
	for _, l := range r.latency {
		fmt.Fprintf(w, "latency @ %.3g MB/s: achieved %.2f MB/s, %d acked, %d consumed, %d/%d samples after %s warm-up, %s\n",
			l.rate, l.achieved, l.acked, l.received, len(l.produce), len(l.e2e), warmup, l.duration)
		if l.produceErr != "" {
			fmt.Fprintf(w, "  produce error: %s\n", l.produceErr)
		}
		if l.noted != "" {
			fmt.Fprintf(w, "  note: %s\n", l.noted)
		}
	}
	if r.agentStatus != nil {
		fmt.Fprintln(w, "\nagent /status at the end:")
		printStatus(w, r.agentStatus)
	}
}

func floorString(v float64, unit string) string {
	if v <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

func floorMs(d time.Duration, what string) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%s (%s)", ms(d), what)
}

// printStatus prints the agent's counters, the nested "stats" object if
// there is one, else every scalar field.
func printStatus(w io.Writer, st map[string]any) {
	m := st
	if s, ok := st["stats"].(map[string]any); ok {
		m = s
	}
	keys := make([]string, 0, len(m))
	for k, v := range m {
		switch v.(type) {
		case map[string]any, []any:
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, k := range keys {
		v := m[k]
		if f, ok := v.(float64); ok && f == float64(int64(f)) {
			v = int64(f)
		}
		fmt.Fprintf(tw, "  %s\t%v\n", k, v)
	}
	if stats, ok := m["flushes"].(float64); ok && stats > 0 {
		if b, ok := m["flush_bytes"].(float64); ok {
			fmt.Fprintf(tw, "  (mean segment)\t%.0f KB\n", b/stats/1e3)
		}
		if u, ok := m["upload_seconds"].(float64); ok {
			fmt.Fprintf(tw, "  (mean upload)\t%.1f ms\n", u/stats*1e3)
		}
	}
	if c, ok := m["commits"].(float64); ok && c > 0 {
		if s, ok := m["commit_seconds"].(float64); ok {
			fmt.Fprintf(tw, "  (mean commit)\t%.1f ms\n", s/c*1e3)
		}
	}
	tw.Flush()
}

// cpuModel reads the first "model name" in /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func commandLine() string {
	args := append([]string{"go run ./cmd/silt-bench"}, os.Args[1:]...)
	return strings.Join(args, " ")
}
