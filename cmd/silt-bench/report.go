package main

// The report: one aligned plain-text table of every figure beside its
// floor, the machine it ran on, and the agent's own counters.

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/cache"
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
	o             options
	started       time.Time
	setup         string
	floor         *floorResult
	throughput    *throughputResult
	saslSSL       *saslSSLResult // the throughput run again over SASL_SSL
	writeCounters *phaseCounters // the writing agent during the throughput phase
	latency       []latencyResult
	catchup       *catchupResult
	compaction    *compactionResult
	sessions      *fetchSessionsResult
	overload      *overloadResult
	skipped       []string
	agentStatus   []namedStatus
}

// namedStatus is one agent's /status JSON.
type namedStatus struct {
	name   string
	status map[string]any
}

func newReport(o options) *report { return &report{o: o, started: time.Now()} }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

func ratio(v, floor float64) string {
	if floor <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v/floor)
}

// pair prints two latencies as "a / b ms".
func pair(a, b time.Duration) string {
	return fmt.Sprintf("%.1f / %.1f ms", float64(a)/1e6, float64(b)/1e6)
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

const gib = float64(1 << 30)

func (r *report) print(w io.Writer) {
	o := r.o
	def := agent.DefaultConfig()
	fmt.Fprintf(w, "\nSilt benchmark, %s\n", r.started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "machine: %s, %d CPUs, GOMAXPROCS=%d, %s/%s, %s\n",
		cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(w, "command: %s\n", commandLine())
	fmt.Fprintf(w, "setup:   %s\n", r.setup)
	fmt.Fprintf(w, "units:   MB = 10^6 bytes, MiB/GiB = 2^20/2^30; payloads random (incompressible)")
	if r.floor != nil {
		fmt.Fprintf(w, "; floors measured with minio-go:\n")
		fmt.Fprintf(w, "         throughput vs raw %s PUTs/GETs (%d workers), latency vs sequential raw %s PUTs",
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
		fmt.Fprintf(tw, "raw PUT latency p50 / p99, %s x %d\t%s\t\t\n", sizeString(o.objectSize), o.floorWorkers,
			pair(f.put.lat.percentile(50), f.put.lat.percentile(99)))
		fmt.Fprintf(tw, "raw PUT latency p50 / p99, %s x 1\t%s\t\t\n", sizeString(f.smallSize), pair(putP50, putP99))
	} else {
		fmt.Fprintln(tw, "raw PUT/GET (floor)\tnot measured (no --s3-endpoint/--s3-bucket)\t\t")
	}
	putFloor := "-"
	if putP50 > 0 {
		putFloor = pair(putP50, putP99) + " (PUT)"
	}
	latRatio := func(l latencies) string {
		if putP50 <= 0 {
			return "-"
		}
		return fmt.Sprintf("%s / %s", ratio(float64(l.percentile(50)), float64(putP50)), ratio(float64(l.percentile(99)), float64(putP99)))
	}

	if t := r.throughput; t != nil {
		fmt.Fprintf(tw, "produce throughput, max\t%.1f MB/s (%.0f records/s)\t%s\t%s\n",
			t.mbps(), t.recordsPerSec(), floorString(putMBps, "MB/s PUT"), ratio(t.mbps(), putMBps))
	}
	if s := r.saslSSL; s != nil {
		plain := 0.0
		if r.throughput != nil {
			plain = r.throughput.mbps()
		}
		fmt.Fprintf(tw, "produce throughput, max, over SASL_SSL (%s)\t%.1f MB/s (%.0f records/s)\t%s\t%s\n",
			saslSSLMechanism, s.mbps(), s.recordsPerSec(), floorString(plain, "MB/s plaintext"), ratio(s.mbps(), plain))
	}
	for _, l := range r.latency {
		at := fmt.Sprintf("@ %.3g MB/s", l.rate)
		fmt.Fprintf(tw, "produce latency p50 / p99 %s\t%s\t%s\t%s\n", at,
			pair(l.produce.percentile(50), l.produce.percentile(99)), putFloor, latRatio(l.produce))
		for _, t := range l.tails {
			fmt.Fprintf(tw, "end-to-end p50 / p99 %s, tail on %s\t%s\t%s\t%s\n", at, tailLabel(t.tailSpec),
				pair(t.e2e.percentile(50), t.e2e.percentile(99)), putFloor, latRatio(t.e2e))
		}
	}
	for _, l := range r.latency {
		at := fmt.Sprintf("@ %.3g MB/s", l.rate)
		for _, t := range l.tails {
			c := t.counters
			if c == nil {
				continue
			}
			name := fmt.Sprintf("per fetch %s, tail on %s: S3 GETs / index queries / metastore calls", at, tailLabel(t.tailSpec))
			if !c.fetches.ok {
				fmt.Fprintf(tw, "%s\t%s\t\t\n", name, perUnit(c.fetches, 1, "%.0f"))
				continue
			}
			n := c.fetches.v
			value := fmt.Sprintf("%s / %s / %s (%.0f fetches)", perUnit(c.gets, n, "%.3f"), perUnit(c.indexQueries, n, "%.3f"),
				perUnit(c.calls, n, "%.3f"), n)
			floor, rat := "0 / 0 / - (target)", "-"
			if t.agent != 0 && l.writer != nil && l.writer.flushes.ok && l.writer.putBytes.ok {
				// Each segment the writer made must be read at least
				// once, one GET per cache block it spans.
				minGets := max(l.writer.flushes.v, math.Ceil(l.writer.putBytes.v/float64(cache.DefaultConfig().BlockSize)))
				floor = fmt.Sprintf("%.3f GETs (%.0f segments) / 0 / -", minGets/max(n, 1), l.writer.flushes.v)
				if c.gets.ok {
					rat = ratio(c.gets.v, minGets) + " (GETs)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, value, floor, rat)
		}
	}
	if c := r.catchup; c != nil {
		fmt.Fprintf(tw, "cold catch-up read, %s from the start, on %s\t%.1f MB/s\t%s\t%s\n",
			sizeString64(c.written), c.readerName, c.mbps(), floorString(getMBps, "MB/s GET"), ratio(c.mbps(), getMBps))
	}
	if c := r.compaction; c != nil {
		fmt.Fprintf(tw, "cold catch-up read of compacted data, %s from the start, on %s\t%.1f MB/s\t%s (aim: 0.5x)\t%s\n",
			sizeString64(c.written), c.reader, c.read.mbps(), floorString(getMBps, "MB/s GET"), ratio(c.read.mbps(), getMBps))
		fmt.Fprintf(tw, "the same read again, that agent's cache warm (one consumer's ceiling)\t%.1f MB/s\t%s\t%s\n",
			c.warm.mbps(), floorString(getMBps, "MB/s GET"), ratio(c.warm.mbps(), getMBps))
	}
	if s := r.sessions; s != nil {
		fmt.Fprintf(tw, "fetch request bytes/s, %d partitions, with fetch sessions (KIP-227)\t%s/s (%.1f requests/s)\t%s/s without sessions\t%s\n",
			s.partitions, sizeString64(int64(s.rate(s.withBytes))), s.rate(s.withReqs), sizeString64(int64(s.rate(s.without))), ratio(float64(s.withBytes), float64(s.without)))
	}
	if c := r.writeCounters; c != nil {
		flushBytes := float64(sizeOr(o.flushBytes, def.FlushBytes))
		if !c.produced.ok {
			fmt.Fprintf(tw, "per GiB written\t%s\t\t\n", perUnit(c.produced, 1, "%.0f"))
		} else {
			g := c.produced.v / gib
			perFlush := gib / flushBytes
			fmt.Fprintf(tw, "per GiB written: S3 PUTs\t%s\t%.0f (1 per %s flush.bytes)\t%s\n",
				perUnit(c.puts, g, "%.1f"), perFlush, sizeString(int(flushBytes)), deltaRatio(c.puts, g, perFlush))
			putsPerGiB := 0.0
			if c.puts.ok {
				putsPerGiB = c.puts.v / g
			}
			fmt.Fprintf(tw, "per GiB written: metastore write transactions\t%s\t%.1f (1 per PUT)\t%s\n",
				perUnit(c.txns, g, "%.1f"), putsPerGiB, deltaRatio(c.txns, g, putsPerGiB))
			fmt.Fprintf(tw, "per GiB written: metastore calls, all\t%s\t%.1f (1 per PUT)\t%s\n",
				perUnit(c.calls, g, "%.1f"), putsPerGiB, deltaRatio(c.calls, g, putsPerGiB))
		}
	}
	if r.catchup != nil && r.catchup.counters != nil {
		c := r.catchup.counters
		if !c.fetched.ok || c.fetched.v <= 0 {
			fmt.Fprintf(tw, "per GiB read\t%s\t\t\n", perUnit(c.fetched, 0, "%.0f"))
		} else {
			g := c.fetched.v / gib
			perBlock := gib / float64(cache.DefaultConfig().BlockSize)
			fmt.Fprintf(tw, "per GiB read: S3 GETs\t%s\t%.0f (1 per %s block)\t%s\n",
				perUnit(c.gets, g, "%.1f"), perBlock, sizeString(int(cache.DefaultConfig().BlockSize)), deltaRatio(c.gets, g, perBlock))
			fmt.Fprintf(tw, "per GiB read: S3 bytes read\t%s\t1.00 GiB\t%s\n",
				perUnit(c.getBytes, g*gib, "%.2f GiB"), deltaRatio(c.getBytes, g*gib, 1))
			fmt.Fprintf(tw, "per GiB read: metastore calls, all (index queries)\t%s (%s)\t\t-\n",
				perUnit(c.calls, g, "%.1f"), perUnit(c.indexQueries, g, "%.1f"))
		}
	}
	if c := r.compaction; c != nil {
		if k := c.read.counters; k != nil && k.fetched.ok && k.fetched.v > 0 && c.read.read > 0 {
			// Compacted batches are zstd: a GiB of records is fewer bytes
			// fetched. GETs are counted per GiB of record values consumed
			// (as the write-path figure, whose batches are uncompressed)
			// and per GiB fetched.
			g, gf := float64(c.read.read)/gib, k.fetched.v/gib
			fmt.Fprintf(tw, "per GiB read, compacted: S3 GETs per GiB of records (per GiB fetched)\t%s (%s)\t300 (aim)\t%s\n",
				perUnit(k.gets, g, "%.1f"), perUnit(k.gets, gf, "%.1f"), deltaRatio(k.gets, g, 300))
			fmt.Fprintf(tw, "per GiB read, compacted: S3 bytes read per byte fetched\t%s\t1.10 (aim)\t%s\n",
				perUnit(k.getBytes, k.fetched.v, "%.2f"), deltaRatio(k.getBytes, k.fetched.v, 1.1))
		}
		if w := float64(c.written) / gib; w > 0 {
			b := c.bucket
			fmt.Fprintf(tw, "compaction per GiB written: S3 GETs / PUTs\t%.1f / %.1f\t\t-\n", float64(b.gets)/w, float64(b.puts)/w)
			fmt.Fprintf(tw, "compaction per GiB written: S3 bytes read / written\t%.2f / %.2f GiB\t1.00 / 1.00 GiB\t%.2f / %.2f\n",
				float64(b.getBytes)/gib/w, float64(b.putBytes)/gib/w, float64(b.getBytes)/gib/w, float64(b.putBytes)/gib/w)
			fmt.Fprintf(tw, "compaction throughput (one compactor, one partition at a time)\t%.1f MB/s read\t\t-\n",
				mbPerSec(c.pass.ReadBytes, c.elapsed))
		}
	}
	if v := r.overload; v != nil {
		budget := v.buffer + v.cache
		fmt.Fprintf(tw, "overload: peak agent RSS (VmHWM)\t%s (idle %s)\t%s (buffer %s + cache %s)\t%s\n",
			mib(v.hwm), mib(v.rssIdle), mib(budget), mib(v.buffer), mib(v.cache), ratio(float64(v.hwm), float64(budget)))
		fmt.Fprintf(tw, "overload: produce accepted\t%.1f MB/s\t%.1f MB/s (upload cap)\t%s\n",
			v.produce.mbps(), v.capMBps, ratio(v.produce.mbps(), v.capMBps))
		// A full write buffer drains at the upload cap: that is the wait
		// a producer queued behind it should see.
		drain := time.Duration(float64(v.buffer) / (v.capMBps * 1e6) * float64(time.Second))
		p50, p99 := v.produce.ackLat.percentile(50), v.produce.ackLat.percentile(99)
		fmt.Fprintf(tw, "overload: produce latency p50 / p99\t%s\t%s (buffer drain at cap)\t%s / %s\n",
			pair(p50, p99), ms(drain), ratio(float64(p50), float64(drain)), ratio(float64(p99), float64(drain)))
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
	if s := r.saslSSL; s != nil {
		fmt.Fprintf(w, "SASL_SSL: the throughput run repeated right after it with the same producers, records and duration (%s) through each agent's SASL_SSL listener, on a fresh topic %s with %d partitions; %s, one SCRAM-SHA-512 authentication per connection; ratio < 1 is the TLS + SASL cost (aim: 0.85 or more)\n",
			s.elapsed, s.topic, o.partitions, s.tls)
		if s.note != "" {
			fmt.Fprintf(w, "  note: %s\n", s.note)
		}
	}
	for _, l := range r.latency {
		fmt.Fprintf(w, "latency @ %.3g MB/s: achieved %.2f MB/s, %d acked, consumed", l.rate, l.achieved, l.acked)
		for _, t := range l.tails {
			fmt.Fprintf(w, " %d (%s)", t.received, t.name)
		}
		fmt.Fprintf(w, ", %d produce samples after %s warm-up, %s\n", len(l.produce), warmup, l.duration)
		if l.produceErr != "" {
			fmt.Fprintf(w, "  produce error: %s\n", l.produceErr)
		}
		if l.noted != "" {
			fmt.Fprintf(w, "  note: %s\n", l.noted)
		}
	}
	if len(r.latency) > 0 && len(r.latency[0].tails) > 0 && r.latency[0].tails[0].counters != nil {
		fmt.Fprintf(w, "per fetch: counter deltas on each tail's agent over the whole run (warm-up and empty long polls included); metastore calls include heartbeats and, on the writing agent, its commits\n")
	}
	if c := r.catchup; c != nil {
		fmt.Fprintf(w, "catch-up: topic %s, %d partitions, written at %.1f MB/s by the writing agent, %d records (%.1f MB) read in %s with kgo default fetch sizes\n",
			c.topic, o.partitions, c.writeMBps, c.records, float64(c.read)/1e6, c.elapsed.Round(time.Millisecond))
		if c.note != "" {
			fmt.Fprintf(w, "  note: %s\n", c.note)
		}
	}
	if c := r.compaction; c != nil {
		fmt.Fprintf(w, "compaction: topic %s compacted by one jobs.Compactor in the benchmark process (%s segments, zstd) in %s: %d segments, %.1f MB read, %.1f MB written; then %d records (%.1f MB) read from its start in %s through a fresh agent (zone zc), kgo default fetch sizes; the write path's agents run with compaction off\n",
			c.topic, sizeString64(c.segBytes), c.elapsed.Round(time.Millisecond), c.pass.Segments, float64(c.pass.ReadBytes)/1e6, float64(c.pass.WrittenBytes)/1e6,
			c.read.records, float64(c.read.read)/1e6, c.read.elapsed.Round(time.Millisecond))
		if c.read.note != "" {
			fmt.Fprintf(w, "  note: %s\n", c.read.note)
		}
	}
	if s := r.sessions; s != nil {
		fmt.Fprintf(w, "fetch sessions: %d records over %s to %d partitions (about 200/s); two consumers tail from the end at the same time, one with sessions (%.1f requests/s, %d records read), one with kgo.DisableFetchSessions (%.1f requests/s, %d records read); bytes are what each wrote in Fetch requests\n",
			s.produced, s.elapsed.Round(time.Millisecond), s.partitions, s.rate(s.withReqs), s.withRead, s.rate(s.withoutN), s.withoutR)
		if s.note != "" {
			fmt.Fprintf(w, "  note: %s\n", s.note)
		}
	}
	if c := r.writeCounters; c != nil && c.produced.ok {
		fmt.Fprintf(w, "per GiB written: the writing agent's counters over the throughput phase (%.2f GiB produced, %s segments); write transactions are metastore commit_flush + record_upload calls\n",
			c.produced.v/gib, perUnit(c.flushes, 1, "%.0f"))
	}
	if v := r.overload; v != nil {
		offered := "unknown"
		if v.offeredMBps > 0 {
			offered = fmt.Sprintf("%.1f MB/s (max produce above, %.1fx the cap)", v.offeredMBps, v.offeredMBps/v.capMBps)
		}
		fmt.Fprintf(w, "overload: own agent and database, bucket through a proxy capping uploads at %.1f MB/s, flush.max.uploads=%d; %d producers, %d partitions, %s; offered %s\n",
			v.capMBps, v.maxUploads, v.produce.producers, v.partitions, v.produce.elapsed, offered)
		bufPeak := "n/a (no " + mBufferBytes + ")"
		if v.bufferPeak >= 0 {
			bufPeak = mib(v.bufferPeak)
		}
		fmt.Fprintf(w, "  peak VmRSS sampled %s, VmHWM %s; write buffer in use at most %s of %s; %d throttled produce responses (max %s); %d records failed\n",
			mib(v.rssPeak), mib(v.hwm), bufPeak, mib(v.buffer), v.throttles, v.throttleMax, v.produce.failures)
		if v.alive {
			fmt.Fprintf(w, "  agent alive at the end: yes — producers were slowed, not the agent killed\n")
		} else {
			fmt.Fprintf(w, "  agent alive at the end: NO (%s)\n", v.exit)
		}
		if v.produce.note != "" {
			fmt.Fprintf(w, "  note: %s\n", v.produce.note)
		}
	}
	for _, s := range r.skipped {
		fmt.Fprintf(w, "skipped: %s\n", s)
	}
	for _, st := range r.agentStatus {
		if st.status == nil {
			continue
		}
		fmt.Fprintf(w, "\nagent %s /status at the end:\n", st.name)
		printStatus(w, st.status)
	}
}

// tailLabel names a tail consumer with its zone.
func tailLabel(t tailSpec) string {
	if t.zone == "" {
		return t.name
	}
	return fmt.Sprintf("%s (%s)", t.name, t.zone)
}

// deltaRatio is (d / unit) ÷ floor, or "-".
func deltaRatio(d counterDelta, unit, floor float64) string {
	if !d.ok || unit <= 0 {
		return "-"
	}
	return ratio(d.v/unit, floor)
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
