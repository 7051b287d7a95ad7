package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recordLine matches a record line of segment dump: offset, timestamp, key,
// value.
var recordLine = regexp.MustCompile(`^    (\+?\d+)  (\S+)  key=(.*?)  value=(.*?)(?:  header |$)`)

type dumpedRecord struct{ offset, key, value, line string }

// dumpAll dumps every segment of bucketURL with extra flags and returns the
// record lines of topic, in segment order.
func dumpAll(t *testing.T, bucketURL, topic string, extra ...string) ([]dumpedRecord, string) {
	t.Helper()
	list, errOut, code := runCLI(t, "segment", "dump", bucketURL)
	if code != 0 {
		t.Fatalf("segment dump %s: exit %d\n%s", bucketURL, code, errOut)
	}
	var recs []dumpedRecord
	var all strings.Builder
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || !strings.HasPrefix(f[2], "segments/") {
			continue
		}
		out, errOut, code := runCLI(t, append([]string{"segment", "dump", bucketURL, f[2]}, extra...)...)
		if code != 0 {
			t.Fatalf("segment dump %s: exit %d\n%s", f[2], code, errOut)
		}
		all.WriteString(out)
		inTopic := false
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "chunk ") {
				inTopic = strings.Contains(l, `topic "`+topic+`"`)
			}
			if m := recordLine.FindStringSubmatch(l); m != nil && inTopic {
				recs = append(recs, dumpedRecord{m[1], m[3], m[4], l})
			}
		}
	}
	return recs, all.String()
}

// TestSegmentDump produces through silt dev, then reads the file:// bucket
// directly: the listing, the index, and records matching what was produced,
// with relative offsets and, given the metastore, real ones.
func TestSegmentDump(t *testing.T) {
	clearSiltEnv(t)
	bin := buildSilt(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	kafkaAddr, httpAddr := freePort(t), freePort(t)
	p := startDev(t, bin, dataDir, kafkaAddr, httpAddr)

	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.AllowAutoTopicCreation(),
		kgo.DefaultProduceTopic("dumped"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	first := []*kgo.Record{
		{Key: []byte("k0"), Value: []byte("hello silt"), Timestamp: ts},
		{Key: []byte("k1"), Value: []byte{0x00, 0xff, 0x01}, Timestamp: ts, Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}},
		{Key: nil, Value: []byte("third"), Timestamp: ts},
	}
	if err := cl.ProduceSync(ctx, first...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	// Acknowledged, so committed: the next records go to another segment.
	second := []*kgo.Record{{Key: []byte("k3"), Value: []byte("fourth"), Timestamp: ts}, {Key: []byte("k4"), Value: []byte("fifth"), Timestamp: ts}}
	if err := cl.ProduceSync(ctx, second...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	// A compressible batch, so the producer keeps zstd (it sends small
	// batches uncompressed when compression does not pay).
	big := &kgo.Record{Topic: "zipped", Value: []byte(strings.Repeat("abc", 1000)), Timestamp: ts}
	if err := cl.ProduceSync(ctx, big).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cl.Close()
	p.stop(t)

	bucketURL := localURL("file", filepath.Join(dataDir, "bucket"))
	list, _, code := runCLI(t, "segment", "dump", bucketURL)
	if code != 0 || !regexp.MustCompile(`(?m)^\s+\d+\s+\S+\s+segments/\S+\.seg$`).MatchString(list) ||
		!regexp.MustCompile(`(?m)^\d+ objects, \d+ bytes$`).MatchString(list) {
		t.Fatalf("listing (exit %d):\n%s", code, list)
	}

	// Relative offsets without the metastore: +0..+2, then +0..+1.
	recs, out := dumpAll(t, bucketURL, "dumped")
	want := []struct{ rel, abs, key, value string }{
		{"+0", "0", `"k0"`, `"hello silt"`},
		{"+1", "1", `"k1"`, `hex:00ff01`},
		{"+2", "2", `null`, `"third"`},
		{"+0", "3", `"k3"`, `"fourth"`},
		{"+1", "4", `"k4"`, `"fifth"`},
	}
	if len(recs) != len(want) {
		t.Fatalf("dumped %d records of topic dumped, want %d:\n%s", len(recs), len(want), out)
	}
	for i, w := range want {
		r := recs[i]
		if r.offset != w.rel || r.key != w.key || r.value != w.value {
			t.Errorf("record %d: %q, want offset %s key %s value %s", i, r.line, w.rel, w.key, w.value)
		}
		if !strings.Contains(r.line, "2026-01-02T03:04:05.006Z") {
			t.Errorf("record %d: timestamp missing in %q", i, r.line)
		}
	}
	if !strings.Contains(recs[1].line, `header "h"="v"`) {
		t.Errorf("header missing: %q", recs[1].line)
	}
	for _, s := range []string{`topic "dumped" partition 0`, "base offset unknown (write path)", "offsets: +N"} {
		if !strings.Contains(out, s) {
			t.Errorf("dump lacks %q:\n%s", s, out)
		}
	}

	zipped, out := dumpAll(t, bucketURL, "zipped")
	if len(zipped) != 1 || zipped[0].value != `"`+strings.Repeat("abc", 85)+`a"...(3000 bytes)` || !strings.Contains(out, "codec zstd") {
		t.Errorf("zstd batch: %+v\n%s", zipped, out)
	}

	// Real offsets from the metastore index.
	metaURL := "sqlite://" + filepath.ToSlash(filepath.Join(dataDir, "meta.db"))
	recs, out = dumpAll(t, bucketURL, "dumped", "--metastore-url", metaURL)
	if len(recs) != len(want) {
		t.Fatalf("with --metastore-url: %d records:\n%s", len(recs), out)
	}
	for i, w := range want {
		if recs[i].offset != w.abs {
			t.Errorf("record %d with --metastore-url: %q, want offset %s", i, recs[i].line, w.abs)
		}
	}
	if !strings.Contains(out, "offsets: real, from the metastore index") || !regexp.MustCompile(`base offset 3 \(from the metastore index\), last 4`).MatchString(out) {
		t.Errorf("index header with --metastore-url:\n%s", out)
	}

	// Truncation, and the index alone.
	recs, _ = dumpAll(t, bucketURL, "dumped", "--max-value-bytes", "4")
	if len(recs) == 0 || recs[0].value != `"hell"...(10 bytes)` {
		t.Errorf("--max-value-bytes 4: %+v", recs)
	}
	recs, out = dumpAll(t, bucketURL, "dumped", "--records=false")
	if len(recs) != 0 || !strings.Contains(out, "batches 1, records 3, offsets 3") {
		t.Errorf("--records=false: %d records\n%s", len(recs), out)
	}

	if _, errOut, code := runCLI(t, "segment", "dump", bucketURL, "segments/missing.seg"); code == 0 || !strings.Contains(errOut, "missing.seg") {
		t.Errorf("dump of a missing key: exit %d %s", code, errOut)
	}
}

// TestSegmentDumpCompacted dumps the compacted golden segment from a
// file:// bucket: the offsets printed are the batches' own, gap included,
// without a metastore.
func TestSegmentDumpCompacted(t *testing.T) {
	clearSiltEnv(t)
	dir := t.TempDir()
	obj, err := os.ReadFile("../../segment/testdata/golden-compacted.seg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "compacted"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "compacted", "orders-2.seg"), obj, 0o644); err != nil {
		t.Fatal(err)
	}
	list, errOut, code := runCLI(t, "segment", "dump", "file://"+dir, "--prefix", "compacted/")
	if code != 0 || !strings.Contains(list, "compacted/orders-2.seg") {
		t.Fatalf("segment dump --prefix compacted/: exit %d\n%s%s", code, list, errOut)
	}
	out, errOut, code := runCLI(t, "segment", "dump", "file://"+dir, "compacted/orders-2.seg")
	if code != 0 {
		t.Fatalf("segment dump: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "base offset 500 (in the segment)") || !strings.Contains(out, "offsets: real, held by the segment") {
		t.Fatalf("dump of a compacted segment does not say its offsets are its own:\n%s", out)
	}
	var offsets []string
	for _, l := range strings.Split(out, "\n") {
		if m := recordLine.FindStringSubmatch(l); m != nil {
			offsets = append(offsets, m[1])
		}
	}
	if got := strings.Join(offsets, ","); got != "500,501,502,503,504,505,506,510,511" {
		t.Fatalf("record offsets %s, want the batches' real ones with the gap\n%s", got, out)
	}
}

// TestSegmentDumpCleaned dumps the cleaned golden segment (keyed
// compaction): the kept records at their own offsets, across the gaps,
// the delete horizon, and nothing for the emptied last batch.
func TestSegmentDumpCleaned(t *testing.T) {
	clearSiltEnv(t)
	dir := t.TempDir()
	obj, err := os.ReadFile("../../segment/testdata/golden-cleaned.seg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "cleaned"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cleaned", "orders-3.seg"), obj, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "segment", "dump", "file://"+dir, "cleaned/orders-3.seg")
	if code != 0 {
		t.Fatalf("segment dump: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "delete horizon") || !strings.Contains(out, "0 records") {
		t.Fatalf("dump of a cleaned segment does not show the delete horizon and the empty batch:\n%s", out)
	}
	var offsets []string
	for _, l := range strings.Split(out, "\n") {
		if m := recordLine.FindStringSubmatch(l); m != nil {
			offsets = append(offsets, m[1])
		}
	}
	if got := strings.Join(offsets, ","); got != "201,203,206" {
		t.Fatalf("record offsets %s, want the kept records' and the marker's\n%s", got, out)
	}
}
