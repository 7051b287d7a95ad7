package segment

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
)

// Recompression keeps every header field but the length, codec and CRC,
// and the records decode to the same bytes, whatever the codec was.
func TestRecompressZstdKeepsBatch(t *testing.T) {
	enc, err := NewZstdEncoder()
	if err != nil {
		t.Fatal(err)
	}
	plain := makeBatch(batchSpec{baseOffset: 1234, records: 20, valueSize: 50, firstTS: 1700000000000, attrs: attrTransactional, producerID: 77})
	// producer epoch and sequence set, CRC fixed
	binary.BigEndian.PutUint16(plain[51:], 3)
	binary.BigEndian.PutUint32(plain[53:], 900)
	binary.BigEndian.PutUint32(plain[12:], 9) // leader epoch
	recrc(plain)
	for codec, name := range []string{"none", "gzip", "snappy", "lz4", "zstd", "snappy-xerial"} {
		in := plain
		if codec > 0 {
			in = compressBatch(t, plain, codec)
		}
		out, err := RecompressZstd([]byte("prefix"), in, enc, 1<<20)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.HasPrefix(out, []byte("prefix")) {
			t.Fatalf("%s: dst not kept", name)
		}
		out = out[len("prefix"):]
		h, err := ValidateBatch(out)
		if err != nil {
			t.Fatalf("%s: recompressed batch invalid: %v", name, err)
		}
		hin, _ := ParseBatchHeader(in)
		if h.Compression() != codecZstd || !h.IsTransactional() {
			t.Fatalf("%s: attributes %#x", name, h.Attributes)
		}
		h.BatchLength, h.CRC, h.Attributes = hin.BatchLength, hin.CRC, hin.Attributes
		if h != hin {
			t.Fatalf("%s: header %+v, want %+v", name, h, hin)
		}
		got, err := decompressRecords(codecZstd, out[BatchHeaderSize:], 1<<20)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got, plain[BatchHeaderSize:]) {
			t.Fatalf("%s: records changed", name)
		}
		if codec == codecZstd && !bytes.Equal(out, in) {
			t.Fatalf("zstd batch rewritten")
		}
	}
}

// Control batches stay as they are; bombs and corrupt batches fail.
func TestRecompressZstdLeavesControlAndRefusesBad(t *testing.T) {
	enc, err := NewZstdEncoder()
	if err != nil {
		t.Fatal(err)
	}
	ctl := ControlBatch(5, 1, true, 0, 1700000000000)
	out, err := RecompressZstd(nil, ctl, enc, 1<<20)
	if err != nil || !bytes.Equal(out, ctl) {
		t.Fatalf("control batch: %v, changed %v", err, !bytes.Equal(out, ctl))
	}
	big := compressBatch(t, makeBatch(batchSpec{records: 100, valueSize: 1000}), 1)
	if _, err := RecompressZstd(nil, big, enc, 1000); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("bomb: %v, want ErrTooLarge", err)
	}
	if _, err := RecompressZstd(nil, big[:len(big)-1], enc, 1<<20); err == nil {
		t.Fatal("truncated batch accepted")
	}
	bad := bytes.Clone(big)
	bad[len(bad)-1] ^= 1
	if _, err := RecompressZstd(nil, bad, enc, 1<<20); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("batch with a bad CRC: %v, want ErrCorruptBatch", err)
	}
}

// A compacted object carries the first batch's offset in its footer and
// real offsets in its batches, and reads back with the ordinary reader.
func TestCompactedObject(t *testing.T) {
	tp := TopicRef{ID: topicID("orders"), Name: "orders", Partition: 3}
	b1 := makeBatch(batchSpec{baseOffset: 100, records: 3, valueSize: 4, firstTS: 1700000000005})
	b2 := makeBatch(batchSpec{baseOffset: 103, records: 2, valueSize: 4, firstTS: 1700000000001})
	b3 := makeBatch(batchSpec{baseOffset: 110, records: 1, valueSize: 4, firstTS: 1700000000009}) // a gap
	obj, c, err := CompactedObject(tp, [][]byte{b1, b2, b3})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(obj)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Chunks()) != 1 || r.Chunks()[0] != c {
		t.Fatalf("chunks %+v, want [%+v]", r.Chunks(), c)
	}
	if c.BaseOffset != 100 || c.BatchCount != 3 || c.OffsetCount != 6 || c.RecordCount != 6 ||
		c.MinTimestamp != 1700000000001 || c.MaxTimestamp != 1700000000009 || c.Partition != 3 {
		t.Fatalf("chunk %+v", c)
	}
	chunk, err := r.ReadChunk(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(chunk, bytes.Join([][]byte{b1, b2, b3}, nil)) {
		t.Fatal("chunk bytes differ from the batches")
	}
	if _, _, err := CompactedObject(tp, [][]byte{b2, b1}); err == nil {
		t.Fatal("decreasing offsets accepted")
	}
	if _, _, err := CompactedObject(tp, nil); err == nil {
		t.Fatal("empty segment accepted")
	}
}

// FuzzRecompressZstd: any bytes either fail or give a valid zstd batch
// with the input's records; nothing panics or allocates past the bound.
func FuzzRecompressZstd(f *testing.F) {
	enc, err := NewZstdEncoder()
	if err != nil {
		f.Fatal(err)
	}
	plain := makeBatch(batchSpec{baseOffset: 7, records: 4, valueSize: 20, firstTS: 1700000000000})
	f.Add(plain)
	f.Add(compressBatch(f, plain, 1))
	f.Add(compressBatch(f, plain, 3))
	f.Add(ControlBatch(5, 1, false, 0, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < BatchHeaderSize {
			return
		}
		// Random mutations almost never keep the CRC right: also try the
		// input with its CRC fixed, to reach the decompression.
		for _, in := range [][]byte{b, recrc(bytes.Clone(b))} {
			out, err := RecompressZstd(nil, in, enc, 1<<16)
			if err != nil {
				continue
			}
			h, _ := ParseBatchHeader(in)
			oh, err := ParseBatchHeader(out)
			if err != nil || oh.BaseOffset != h.BaseOffset || oh.NumRecords != h.NumRecords || oh.LastOffsetDelta != h.LastOffsetDelta {
				t.Fatalf("recompressed header %+v (%v) from %+v", oh, err, h)
			}
			if Checksum(out[batchCRCStart:]) != oh.CRC {
				t.Fatal("recompressed batch CRC wrong")
			}
		}
	})
}

// A batch the builder refuses (corrupt, or out of order) leaves the
// segment as it was: the batches before it, and a valid object.
func TestCompactedBuilderRefusalLeavesSegmentIntact(t *testing.T) {
	tp := TopicRef{ID: topicID("orders"), Name: "orders", Partition: 0}
	enc, err := NewZstdEncoder()
	if err != nil {
		t.Fatal(err)
	}
	b1 := makeBatch(batchSpec{baseOffset: 0, records: 3, valueSize: 40, firstTS: 1700000000000})
	b2 := makeBatch(batchSpec{baseOffset: 0, records: 2, valueSize: 40, firstTS: 1700000000001})
	cb, err := NewCompactedBuilder(tp, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := cb.AppendZstd(b1, 10, enc, 1<<20); err != nil {
		t.Fatal(err)
	}
	size := cb.Size()
	bad := append([]byte(nil), b2...)
	bad[len(bad)-1] ^= 0xff // the Kafka CRC no longer holds
	if err := cb.AppendZstd(bad, 13, enc, 1<<20); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("corrupt batch: %v, want ErrCorruptBatch", err)
	}
	if err := cb.AppendZstd(b2, 5, enc, 1<<20); err == nil {
		t.Fatal("a batch below the previous one's offsets accepted")
	}
	if cb.Size() != size {
		t.Fatalf("refused batches left %d bytes, want %d", cb.Size(), size)
	}
	if err := cb.AppendZstd(b2, 13, enc, 1<<20); err != nil {
		t.Fatal(err)
	}
	obj, c, err := cb.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseOffset != 10 || c.BatchCount != 2 || c.OffsetCount != 5 {
		t.Fatalf("chunk %+v", c)
	}
	r, err := Parse(obj)
	if err != nil {
		t.Fatal(err)
	}
	chunk, err := r.ReadChunk(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var offsets []int64
	for it := NewBatchIter(chunk); it.Next(); {
		h := it.Header()
		offsets = append(offsets, h.BaseOffset)
		if h.Compression() != codecZstd {
			t.Fatalf("batch at %d has codec %d, want zstd", h.BaseOffset, h.Compression())
		}
	}
	if len(offsets) != 2 || offsets[0] != 10 || offsets[1] != 13 {
		t.Fatalf("batch offsets %v, want [10 13]", offsets)
	}
}
