package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// compressBatch returns batch (uncompressed, from makeBatch) with its
// records compressed by codec, header and CRC fixed up. codec 5 stands for
// snappy in the Java client's xerial framing.
func compressBatch(t testing.TB, batch []byte, codec int) []byte {
	t.Helper()
	recs := batch[BatchHeaderSize:]
	var comp []byte
	switch codec {
	case 1:
		comp = streamCompress(t, func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) }, bytes.NewReader(recs))
	case 2:
		comp = s2.EncodeSnappy(nil, recs)
	case 3:
		comp = streamCompress(t, func(w io.Writer) io.WriteCloser { return lz4.NewWriter(w) }, bytes.NewReader(recs))
	case 4:
		comp = streamCompress(t, zstdWriter(t), bytes.NewReader(recs))
	case 5:
		comp, codec = xerial(recs, 1), 2
	}
	return withRecords(batch, comp, int16(codec))
}

// withRecords replaces a batch's records section, setting the codec.
func withRecords(batch, records []byte, codec int16) []byte {
	out := append(bytes.Clone(batch[:BatchHeaderSize]), records...)
	attrs := int16(binary.BigEndian.Uint16(out[21:]))&^attrCompressionMask | codec
	binary.BigEndian.PutUint16(out[21:], uint16(attrs))
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-batchLengthEnd))
	return recrc(out)
}

func zstdWriter(t testing.TB) func(io.Writer) io.WriteCloser {
	return func(w io.Writer) io.WriteCloser {
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		return zw
	}
}

func streamCompress(t testing.TB, newW func(io.Writer) io.WriteCloser, src io.Reader) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := newW(&buf)
	if _, err := io.Copy(w, src); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// xerial frames b as the Java client's snappy stream does, repeated n times
// (each repetition one more block).
func xerial(b []byte, n int) []byte {
	out := append(bytes.Clone(xerialMagic), 0, 0, 0, 1, 0, 0, 0, 1)
	block := s2.EncodeSnappy(nil, b)
	for range n {
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
	}
	return out
}

func TestFirstRecordAtOrAfter(t *testing.T) {
	plain := makeBatch(batchSpec{records: 50, valueSize: 100, firstTS: 1000})
	for codec, name := range []string{"none", "gzip", "snappy", "lz4", "zstd", "snappy-xerial"} {
		t.Run(name, func(t *testing.T) {
			b := plain
			if codec > 0 {
				b = compressBatch(t, plain, codec)
			}
			if _, err := ValidateBatch(b); err != nil {
				t.Fatalf("test batch invalid: %v", err)
			}
			for _, c := range []struct {
				ts        int64
				wantDelta int32
			}{{0, 0}, {1000, 0}, {1017, 17}, {1049, 49}} {
				d, ts, err := FirstRecordAtOrAfter(b, c.ts, 1<<20)
				if err != nil || d != c.wantDelta || ts != 1000+int64(c.wantDelta) {
					t.Errorf("at or after %d: delta %d ts %d err %v, want delta %d", c.ts, d, ts, err, c.wantDelta)
				}
			}
			if _, _, err := FirstRecordAtOrAfter(b, 1050, 1<<20); !errors.Is(err, ErrNoRecord) {
				t.Errorf("past the last record: err %v, want ErrNoRecord", err)
			}
			if codec > 0 {
				if _, _, err := FirstRecordAtOrAfter(b, 0, 100); !errors.Is(err, ErrTooLarge) {
					t.Errorf("records over the bound: err %v, want ErrTooLarge", err)
				}
			}
		})
	}
}

// zeros reads n zero bytes without holding them.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), z.n))
	clear(p[:k])
	z.n -= int64(k)
	return k, nil
}

// TestDecompressionBombsStayBounded: batches of a few kilobytes to a few
// megabytes whose records expand to a gigabyte fail with ErrTooLarge, and
// the search allocates little more than its bound.
func TestDecompressionBombsStayBounded(t *testing.T) {
	const bomb = 1 << 30
	const limit = 4 << 20
	hdr := makeBatch(batchSpec{records: 1, firstTS: 1})
	rawSnappyClaim := binary.AppendUvarint(nil, bomb) // a block header claiming 1 GiB
	cases := map[string][]byte{
		"zstd":          withRecords(hdr, streamCompress(t, zstdWriter(t), &zeros{bomb}), 4),
		"gzip":          withRecords(hdr, streamCompress(t, func(w io.Writer) io.WriteCloser { w2, _ := gzip.NewWriterLevel(w, gzip.BestSpeed); return w2 }, &zeros{bomb / 4}), 1),
		"lz4":           withRecords(hdr, streamCompress(t, func(w io.Writer) io.WriteCloser { return lz4.NewWriter(w) }, &zeros{bomb / 4}), 3),
		"snappy-raw":    withRecords(hdr, append(rawSnappyClaim, 0, 0, 0), 2),
		"snappy-xerial": withRecords(hdr, xerial(make([]byte, 32<<10), bomb/(32<<10)), 2),
	}
	for name, b := range cases {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, _, err := FirstRecordAtOrAfter(b, 0, limit)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s bomb of %d bytes: err %v, want ErrTooLarge", name, len(b), err)
		}
		// Generous (the bound, the buffer's doubling, decoder state, pools
		// that -race empties), and still a sixteenth of the smallest bomb.
		if got := after.TotalAlloc - before.TotalAlloc; got > 16*limit {
			t.Errorf("%s bomb of %d bytes: allocated %d MiB searching with a %d MiB bound", name, len(b), got>>20, limit>>20)
		}
	}
}

func FuzzFirstRecordAtOrAfter(f *testing.F) {
	plain := makeBatch(batchSpec{records: 5, valueSize: 10, firstTS: 100})
	f.Add(plain, int64(102))
	for codec := 1; codec <= 5; codec++ {
		f.Add(compressBatch(f, plain, codec), int64(103))
	}
	hdr := makeBatch(batchSpec{records: 1, firstTS: 1})
	f.Add(withRecords(hdr, streamCompress(f, zstdWriter(f), &zeros{4 << 20}), 4), int64(0))
	f.Add(withRecords(hdr, binary.AppendUvarint(nil, 1<<40), 2), int64(0))
	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, batch []byte, ts int64) {
		d, got, err := FirstRecordAtOrAfter(batch, ts, limit)
		if err != nil {
			return
		}
		if got < ts || d < 0 {
			t.Fatalf("found delta %d at %d for a search at or after %d", d, got, ts)
		}
	})
}
