package segment

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files under testdata/")

const (
	goldenSeg          = "testdata/golden.seg"
	goldenTxt          = "testdata/golden.txt"
	goldenCompactedSeg = "testdata/golden-compacted.seg"
	goldenCompactedTxt = "testdata/golden-compacted.txt"
	goldenCleanedSeg   = "testdata/golden-cleaned.seg"
	goldenCleanedTxt   = "testdata/golden-cleaned.txt"
)

// goldenSegment builds the small, deterministic segment kept in testdata:
// three partitions of two topics, appended interleaved.
func goldenSegment(t testing.TB) []byte {
	orders := TopicRef{ID: topicID("orders"), Name: "orders"}
	orders1 := orders
	orders1.Partition = 1
	clicks := TopicRef{ID: topicID("clicks"), Name: "clicks", Partition: 0}
	w := NewWriter()
	for i, a := range []struct {
		tp   TopicRef
		spec batchSpec
	}{
		{orders1, batchSpec{baseOffset: -1, records: 2, valueSize: 3, firstTS: 1700000000000}},
		{clicks, batchSpec{baseOffset: -1, records: 1, valueSize: 8, firstTS: 1700000000005, producerID: 42}},
		{orders, batchSpec{baseOffset: -1, records: 3, valueSize: 2, firstTS: 1700000000001}},
		{orders1, batchSpec{baseOffset: -1, records: 1, valueSize: 4, firstTS: 1700000000003}},
		{clicks, batchSpec{baseOffset: -1, records: 2, valueSize: 1, firstTS: 1700000000002, producerID: 42}},
	} {
		a.spec.seed = byte(i)
		b := makeBatch(a.spec)
		w.Append(a.tp, b, mustValidate(t, b))
	}
	obj, _ := w.Finish()
	return obj
}

// goldenCompactedSegment builds the compacted segment kept in testdata: one
// partition, batches at their real offsets with a gap (as keyed
// compaction leaves), the second recompressed with zstd, the last a
// transaction marker.
func goldenCompactedSegment(t testing.TB) []byte {
	enc, err := NewZstdEncoder()
	if err != nil {
		t.Fatal(err)
	}
	b1 := makeBatch(batchSpec{baseOffset: 500, records: 3, valueSize: 5, firstTS: 1700000000000, producerID: 9, seed: 1})
	b2, err := RecompressZstd(nil, makeBatch(batchSpec{baseOffset: 503, records: 4, valueSize: 64, firstTS: 1700000000010, seed: 2}), enc, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	b3 := makeBatch(batchSpec{baseOffset: 510, records: 1, valueSize: 2, firstTS: 1700000000020, seed: 3})
	ctl := ControlBatch(9, 0, true, 0, 1700000000030)
	SetBaseOffset(ctl, 511)
	obj, _, err := CompactedObject(TopicRef{ID: topicID("orders"), Name: "orders", Partition: 2}, [][]byte{b1, b2, b3, ctl})
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// goldenCleanedSegment builds the cleaned segment kept in testdata, as
// keyed compaction writes it: a batch keeping two of its four records,
// one a tombstone (so it carries a delete horizon), a batch removed
// whole, a transaction marker, and a last batch left empty.
func goldenCleanedSegment(t testing.TB) []byte {
	enc, err := NewZstdEncoder()
	if err != nil {
		t.Fatal(err)
	}
	rec := func(d int32, k, v string) Record {
		r := Record{OffsetDelta: d, TimestampMs: 1700000000000 + int64(d), Key: []byte(k)}
		if v != "" {
			r.Value = []byte(v)
		}
		return r
	}
	keep := func(deltas ...int32) func(CleanRecord) bool {
		return func(r CleanRecord) bool { return slices.Contains(deltas, r.OffsetDelta) }
	}
	b1, _, err := FilterBatch(nil, BuildBatch(200, []Record{rec(0, "a", "a0"), rec(1, "b", ""), rec(2, "c", "c2"), rec(3, "a", "a3")}),
		keep(1, 3), 1700000100000, enc, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ctl := ControlBatch(9, 0, true, 0, 1700000000030)
	SetBaseOffset(ctl, 206)
	last, _, err := FilterBatch(nil, BuildBatch(207, []Record{rec(0, "c", "c7"), rec(1, "d", "d8")}), keep(), 1700000100000, enc, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	obj, _, err := CompactedObject(TopicRef{ID: topicID("orders"), Name: "orders", Partition: 3}, [][]byte{b1, ctl, last})
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// dumpSegment describes a segment: the footer as Reader.Dump prints it, then
// every batch of every chunk.
func dumpSegment(t testing.TB, obj []byte) []byte {
	r, err := Parse(obj)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.Dump(&buf); err != nil {
		t.Fatal(err)
	}
	for i := range r.Chunks() {
		chunk, err := r.ReadChunk(context.Background(), i)
		if err != nil {
			t.Fatal(err)
		}
		it := NewBatchIter(chunk)
		for it.Next() {
			h := it.Header()
			fmt.Fprintf(&buf, "chunk %d batch base=%d size=%d records=%d lastOffsetDelta=%d ts=[%d,%d] producer=%d crc=%08x",
				i, h.BaseOffset, h.Size(), h.NumRecords, h.LastOffsetDelta, h.FirstTimestamp, h.MaxTimestamp, h.ProducerID, h.CRC)
			if hz, ok := h.DeleteHorizon(); ok {
				fmt.Fprintf(&buf, " deleteHorizon=%d", hz)
			}
			fmt.Fprintln(&buf)
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	checkGolden(t, goldenSegment(t), goldenSeg, goldenTxt)
}

// TestGoldenCompacted pins the layout of a compacted segment.
func TestGoldenCompacted(t *testing.T) {
	checkGolden(t, goldenCompactedSegment(t), goldenCompactedSeg, goldenCompactedTxt)
}

// TestGoldenCleaned pins the layout of a cleaned segment (keyed
// compaction).
func TestGoldenCleaned(t *testing.T) {
	checkGolden(t, goldenCleanedSegment(t), goldenCleanedSeg, goldenCleanedTxt)
}

func checkGolden(t *testing.T, obj []byte, segPath, txtPath string) {
	txt := dumpSegment(t, obj)
	if *rewrite {
		if err := os.MkdirAll(filepath.Dir(segPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(segPath, obj, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(txtPath, txt, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	wantObj, err := os.ReadFile(segPath)
	if err != nil {
		t.Fatalf("%v (run go test ./segment -run TestGolden -rewrite)", err)
	}
	wantTxt, err := os.ReadFile(txtPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(obj, wantObj) {
		t.Errorf("writer output differs from %s: the format changed; if on purpose, bump the version or rewrite", segPath)
	}
	if got := dumpSegment(t, wantObj); !bytes.Equal(got, wantTxt) {
		t.Errorf("dump of %s differs from %s:\n%s", segPath, txtPath, got)
	}
}

// TestPythonReader runs testdata/readseg.py, a reader written from FORMAT.md
// alone, over the golden segments, and checks it agrees with this package:
// the footer as Reader.Dump prints it and the offsets PatchBaseOffsets
// gives (a write-path segment) or the batches hold (a compacted one).
func TestPythonReader(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("SILT_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("python3 not found; the spec cross-check needs it (apt-get install python3): %v", err)
		}
		t.Skip("SKIPPING: python3 not installed; the spec cross-check needs it")
	}
	for _, tc := range []struct {
		path  string
		bases []int64
	}{
		{goldenSeg, []int64{100, 0, 7}},
		{goldenCompactedSeg, nil},
		{goldenCleanedSeg, nil},
	} {
		args := []string{"testdata/readseg.py", tc.path}
		for _, b := range tc.bases {
			args = append(args, strconv.FormatInt(b, 10))
		}
		out, err := exec.Command(py, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("readseg.py %s: %v\n%s", tc.path, err, out)
		}

		obj, err := os.ReadFile(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Parse(obj)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := r.Dump(&want); err != nil {
			t.Fatal(err)
		}
		for i, c := range r.Chunks() {
			chunk := bytes.Clone(obj[c.Position : c.Position+c.Length])
			known := c.BaseOffset != NoBaseOffset
			if i < len(tc.bases) {
				if _, err := PatchBaseOffsets(chunk, tc.bases[i]); err != nil {
					t.Fatal(err)
				}
				known = true
			}
			it := NewBatchIter(chunk)
			for it.Next() {
				h := it.Header()
				fmt.Fprintf(&want, "chunk %d batch size=%d records=%d lastOffsetDelta=%d", i, h.Size(), h.NumRecords, h.LastOffsetDelta)
				if known {
					fmt.Fprintf(&want, " offset=%d", h.BaseOffset)
				}
				if hz, ok := h.DeleteHorizon(); ok {
					fmt.Fprintf(&want, " deleteHorizon=%d", hz)
				}
				fmt.Fprintln(&want)
			}
		}
		if string(out) != want.String() {
			t.Fatalf("readseg.py %s says:\n%s\nsegment package says:\n%s", tc.path, out, want.String())
		}
	}
}
