package main

// The agents' own counters: their /metrics endpoint (Prometheus text
// format) scraped before and after a phase, so each phase's S3 requests and
// metastore calls can be read per GiB or per fetch. Families that an agent
// does not export are reported as missing, never guessed.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// series is one sample line: its labels and value.
type series struct {
	labels map[string]string
	value  float64
}

// metricSnap is one scrape: the samples of every family, by metric name
// (histogram _count and _sum lines keep their suffix).
type metricSnap map[string][]series

// scrapeMetrics reads http://addr/metrics; nil if there is no address or
// the agent does not answer.
func scrapeMetrics(ctx context.Context, addr string) metricSnap {
	if addr == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	snap, err := parseMetrics(resp.Body)
	if err != nil {
		return nil
	}
	return snap
}

// parseMetrics parses the Prometheus text exposition format: comments are
// skipped, each other line is name{labels} value [timestamp].
func parseMetrics(r io.Reader) (metricSnap, error) {
	snap := metricSnap{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		labels := map[string]string{}
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			var err error
			if labels, rest, err = parseLabels(rest[1:]); err != nil {
				return nil, fmt.Errorf("metric %s: %w", name, err)
			}
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue // NaN spelled oddly, or a line we do not understand
		}
		snap[name] = append(snap[name], series{labels: labels, value: v})
	}
	return snap, sc.Err()
}

// parseLabels parses `k="v",k2="v2"}` and returns what follows the brace.
func parseLabels(s string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return labels, s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return nil, "", fmt.Errorf("bad labels near %q", s)
		}
		key := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var b strings.Builder
		i := 0
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				default:
					b.WriteByte(s[i])
				}
				continue
			}
			b.WriteByte(s[i])
		}
		if i >= len(s) {
			return nil, "", fmt.Errorf("unterminated label value for %s", key)
		}
		labels[key] = b.String()
		s = s[i+1:]
	}
}

// sum adds the samples of name whose labels include every pair in match
// (key, value, key, value...). ok is false if the family is absent.
func (m metricSnap) sum(name string, match ...string) (v float64, ok bool) {
	ss, ok := m[name]
	if !ok {
		return 0, false
	}
next:
	for _, s := range ss {
		for i := 0; i+1 < len(match); i += 2 {
			if s.labels[match[i]] != match[i+1] {
				continue next
			}
		}
		v += s.value
	}
	return v, true
}

// counterDelta is after − before for a family in both scrapes.
type counterDelta struct {
	v       float64
	ok      bool
	missing string // the family that was not found, if !ok
}

func delta(before, after metricSnap, name string, match ...string) counterDelta {
	if before == nil || after == nil {
		return counterDelta{missing: "/metrics"}
	}
	a, ok1 := after.sum(name, match...)
	b, ok2 := before.sum(name, match...)
	if !ok1 || !ok2 {
		return counterDelta{missing: name}
	}
	return counterDelta{v: a - b, ok: true}
}

// Metric names the report reads; see agent/metrics.go,
// objectstore/instrumented and metastore/instrumented.
const (
	mS3Requests     = "silt_s3_requests_total"
	mS3Bytes        = "silt_s3_transfer_bytes_total"
	mMetastoreCalls = "silt_metastore_request_duration_seconds_count"
	mKafkaRequests  = "silt_kafka_requests_total"
	mProduceBytes   = "silt_produce_bytes_total"
	mFetchBytes     = "silt_fetch_bytes_total"
	mFlushes        = "silt_flushes_total"
	mIndexLookups   = "silt_index_lookups_total"
	mBufferBytes    = "silt_buffer_bytes"
)

// phaseCounters is what one agent did during one phase.
type phaseCounters struct {
	agent        string
	puts, gets   counterDelta
	putBytes     counterDelta
	getBytes     counterDelta
	txns         counterDelta // metastore write transactions: commit_flush + record_upload
	calls        counterDelta // every metastore call
	indexQueries counterDelta // fetch index lookups answered by the store
	fetches      counterDelta
	produced     counterDelta
	fetched      counterDelta
	flushes      counterDelta
}

func countersBetween(agent string, before, after metricSnap) phaseCounters {
	c := phaseCounters{agent: agent}
	c.puts = delta(before, after, mS3Requests, "op", "put")
	c.gets = delta(before, after, mS3Requests, "op", "get")
	c.putBytes = delta(before, after, mS3Bytes, "op", "put")
	c.getBytes = delta(before, after, mS3Bytes, "op", "get")
	commit := delta(before, after, mMetastoreCalls, "op", "commit_flush")
	upload := delta(before, after, mMetastoreCalls, "op", "record_upload")
	c.txns = counterDelta{v: commit.v + upload.v, ok: commit.ok && upload.ok, missing: commit.missing + upload.missing}
	if commit.missing != "" && upload.missing != "" {
		c.txns.missing = commit.missing
	}
	c.calls = delta(before, after, mMetastoreCalls)
	c.indexQueries = delta(before, after, mIndexLookups, "source", "store")
	c.fetches = delta(before, after, mKafkaRequests, "api", "Fetch")
	c.produced = delta(before, after, mProduceBytes)
	c.fetched = delta(before, after, mFetchBytes)
	c.flushes = delta(before, after, mFlushes)
	return c
}

// perUnit formats d divided by unit (for example GiB moved), or "n/a" and
// the missing family.
func perUnit(d counterDelta, unit float64, format string) string {
	if !d.ok {
		return "n/a (no " + d.missing + ")"
	}
	if unit <= 0 {
		return "n/a (nothing moved)"
	}
	return fmt.Sprintf(format, d.v/unit)
}

// procStatus reads VmRSS and VmHWM (bytes) from /proc/<pid>/status.
func procStatus(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return rss, hwm, sc.Err()
}
