package segment

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"runtime"
	"testing"
)

func FuzzParse(f *testing.F) {
	golden, err := os.ReadFile(goldenSeg)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add(golden[1:])
	f.Add(golden[:len(golden)-1])
	empty, _ := NewWriter().Finish()
	f.Add(empty)
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, obj []byte) {
		checkParse(t, obj)
		// Random mutations almost never keep the checksums right, so also
		// parse the input with fixed checksums, to reach the footer decoder.
		checkParse(t, fixChecksums(obj))
	})
}

// fixChecksums returns a copy of obj with trailer and footer CRCs made to
// match, and the header mirroring the trailer, where the trailer allows it.
func fixChecksums(obj []byte) []byte {
	obj = bytes.Clone(obj)
	if len(obj) < headerSize+trailerSize {
		return obj
	}
	be := binary.BigEndian
	tr := obj[len(obj)-trailerSize:]
	pos, n := be.Uint64(tr[trFooterPos:]), uint64(be.Uint32(tr[trFooterLen:]))
	if pos <= uint64(len(obj)) && n <= uint64(len(obj))-pos {
		be.PutUint32(tr[trFooterCRC:], Checksum(obj[pos:pos+n]))
	}
	be.PutUint32(tr[trTrailerCRC:], Checksum(tr[:trTrailerCRC]))
	copy(obj, Magic)
	copy(obj[8:], tr[trVersion:trVersion+2])
	copy(obj[10:], tr[trFlags:trFlags+2])
	return obj
}

func checkParse(t *testing.T, obj []byte) {
	t.Helper()
	r, err := Parse(obj)
	if err != nil {
		return
	}
	var total int64
	for i, c := range r.Chunks() {
		if c.Position < headerSize || c.Position+c.Length > int64(len(obj)) {
			t.Fatalf("chunk %d out of bounds: %+v", i, c)
		}
		total += c.Length
		chunk, err := r.ReadChunk(context.Background(), i)
		if err != nil {
			continue
		}
		it := NewBatchIter(chunk)
		for it.Next() {
			if len(it.Batch()) != it.Header().Size() {
				t.Fatalf("batch of %d bytes, header says %d", len(it.Batch()), it.Header().Size())
			}
		}
	}
	if total > int64(len(obj)) {
		t.Fatalf("chunks cover %d bytes of a %d-byte object", total, len(obj))
	}
}

func FuzzNextBatch(f *testing.F) {
	golden, err := os.ReadFile(goldenSeg)
	if err != nil {
		f.Fatal(err)
	}
	r, err := Parse(golden)
	if err != nil {
		f.Fatal(err)
	}
	for i := range r.Chunks() {
		chunk, _ := r.ReadChunk(context.Background(), i)
		f.Add(chunk)
		f.Add(chunk[:len(chunk)/2])
	}
	f.Add(v0Message())
	f.Fuzz(func(t *testing.T, b []byte) {
		rest := b
		for len(rest) > 0 {
			batch, next, h, err := NextBatch(rest)
			if err != nil {
				if len(next) != len(rest) {
					t.Fatal("rest changed on error")
				}
				break
			}
			if len(batch) != h.Size() || len(batch) < BatchHeaderSize || len(batch)+len(next) != len(rest) {
				t.Fatalf("batch %d bytes, header size %d, rest %d of %d", len(batch), h.Size(), len(next), len(rest))
			}
			if vh, err := ValidateBatch(batch); err == nil && vh != h {
				t.Fatalf("validate header %+v, next header %+v", vh, h)
			}
			rest = next
		}
		ValidateBatch(b)
		ParseBatchHeader(b)
		PatchBaseOffsets(b, 0)
	})
}

// TestParseAllocBound checks that Parse allocates in proportion to the
// footer actually present, whatever its counts claim.
func TestParseAllocBound(t *testing.T) {
	w := NewWriter()
	b := makeBatch(batchSpec{records: 1})
	h := mustValidate(t, b)
	for p := range 1000 {
		w.Append(TopicRef{ID: topicID("t"), Name: "t", Partition: int32(p)}, b, h)
	}
	obj, _ := w.Finish()
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	const runs = 20
	for range runs {
		if _, err := Parse(obj); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&ms1)
	perRun := (ms1.TotalAlloc - ms0.TotalAlloc) / runs
	footer := uint64(1000 * (footerEntryMin + 1))
	if perRun > 2*footer {
		t.Fatalf("Parse allocated %d bytes for a %d-byte footer", perRun, footer)
	}
	if a := testing.AllocsPerRun(runs, func() { Parse(obj) }); a > 3 {
		t.Fatalf("Parse made %v allocations", a)
	}
}
