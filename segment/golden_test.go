package segment

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files under testdata/")

const (
	goldenSeg = "testdata/golden.seg"
	goldenTxt = "testdata/golden.txt"
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
			fmt.Fprintf(&buf, "chunk %d batch base=%d size=%d records=%d lastOffsetDelta=%d ts=[%d,%d] producer=%d crc=%08x\n",
				i, h.BaseOffset, h.Size(), h.NumRecords, h.LastOffsetDelta, h.FirstTimestamp, h.MaxTimestamp, h.ProducerID, h.CRC)
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	obj := goldenSegment(t)
	txt := dumpSegment(t, obj)
	if *rewrite {
		if err := os.MkdirAll(filepath.Dir(goldenSeg), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenSeg, obj, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenTxt, txt, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	wantObj, err := os.ReadFile(goldenSeg)
	if err != nil {
		t.Fatalf("%v (run go test ./segment -run TestGolden -rewrite)", err)
	}
	wantTxt, err := os.ReadFile(goldenTxt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(obj, wantObj) {
		t.Errorf("writer output differs from %s: the format changed; if on purpose, bump the version or rewrite", goldenSeg)
	}
	if got := dumpSegment(t, wantObj); !bytes.Equal(got, wantTxt) {
		t.Errorf("dump of %s differs from %s:\n%s", goldenSeg, goldenTxt, got)
	}
}

// TestPythonReader runs testdata/readseg.py, a reader written from FORMAT.md
// alone, over the golden segment, and checks it agrees with this package:
// the footer as Reader.Dump prints it and the offsets PatchBaseOffsets gives.
func TestPythonReader(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("SILT_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("python3 not found; the spec cross-check needs it (apt-get install python3): %v", err)
		}
		t.Skip("SKIPPING: python3 not installed; the spec cross-check needs it")
	}
	bases := []int64{100, 0, 7}
	args := []string{"testdata/readseg.py", goldenSeg}
	for _, b := range bases {
		args = append(args, strconv.FormatInt(b, 10))
	}
	out, err := exec.Command(py, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("readseg.py: %v\n%s", err, out)
	}

	obj, err := os.ReadFile(goldenSeg)
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
		if _, err := PatchBaseOffsets(chunk, bases[i]); err != nil {
			t.Fatal(err)
		}
		it := NewBatchIter(chunk)
		for it.Next() {
			h := it.Header()
			fmt.Fprintf(&want, "chunk %d batch size=%d records=%d lastOffsetDelta=%d offset=%d\n", i, h.Size(), h.NumRecords, h.LastOffsetDelta, h.BaseOffset)
		}
	}
	if string(out) != want.String() {
		t.Fatalf("readseg.py says:\n%s\nsegment package says:\n%s", out, want.String())
	}
}
