package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestValidateBatchOK(t *testing.T) {
	b := makeBatch(batchSpec{baseOffset: 0, records: 5, valueSize: 10, firstTS: 1000, attrs: 0x10, producerID: 7})
	h := mustValidate(t, b)
	if h.NumRecords != 5 || h.LastOffsetDelta != 4 || h.OffsetCount() != 5 || h.Size() != len(b) {
		t.Fatalf("header %+v", h)
	}
	if !h.IsTransactional() || h.IsControl() || h.Compression() != 0 || h.ProducerID != 7 || h.FirstTimestamp != 1000 || h.MaxTimestamp != 1004 {
		t.Fatalf("header fields %+v", h)
	}
}

func TestValidateBatchErrors(t *testing.T) {
	good := func() []byte { return makeBatch(batchSpec{records: 3, valueSize: 4, firstTS: 5}) }
	cases := []struct {
		name string
		b    func() []byte
		want error
	}{
		{"empty", func() []byte { return nil }, ErrTruncated},
		{"short header", func() []byte { return good()[:40] }, ErrTruncated},
		{"truncated", func() []byte { b := good(); return b[:len(b)-1] }, ErrTruncated},
		{"trailing bytes", func() []byte { return append(good(), 0) }, ErrCorruptBatch},
		{"bad crc", func() []byte { b := good(); b[len(b)-1] ^= 1; return b }, ErrCorruptBatch},
		{"crc field", func() []byte { b := good(); b[17] ^= 1; return b }, ErrCorruptBatch},
		{"magic 0", func() []byte { b := good(); b[16] = 0; return b }, ErrUnsupportedMagic},
		{"magic 1", func() []byte { b := good(); b[16] = 1; return b }, ErrUnsupportedMagic},
		{"magic 3", func() []byte { b := good(); b[16] = 3; return b }, ErrCorruptBatch},
		{"short v0 message", func() []byte { return v0Message() }, ErrUnsupportedMagic},
		{"length too small", func() []byte { b := good(); binary.BigEndian.PutUint32(b[8:], 10); return b }, ErrCorruptBatch},
		{"count mismatch", func() []byte { b := good(); binary.BigEndian.PutUint32(b[57:], 4); return recrc(b) }, ErrInvalidRecord},
		{"zero records", func() []byte {
			b := good()
			binary.BigEndian.PutUint32(b[57:], 0)
			binary.BigEndian.PutUint32(b[23:], 0xffffffff)
			return recrc(b)
		}, ErrInvalidRecord},
		{"delta mismatch", func() []byte { b := good(); binary.BigEndian.PutUint32(b[23:], 7); return recrc(b) }, ErrInvalidRecord},
		{"codec 5", func() []byte { b := good(); b[22] |= 5; return recrc(b) }, ErrCorruptBatch},
		{"control", func() []byte { b := good(); b[22] |= 0x20; return recrc(b) }, ErrInvalidRecord},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ValidateBatch(c.b())
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// v0Message is a legacy (magic 0) message set with one tiny message.
func v0Message() []byte {
	msg := []byte{0, 0, 0, 0, 0 /*magic*/, 0 /*attrs*/, 0xff, 0xff, 0xff, 0xff /*null key*/, 0, 0, 0, 1, 'x'}
	b := binary.BigEndian.AppendUint64(nil, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	return append(b, msg...)
}

func TestValidateBatchCodecs(t *testing.T) {
	for codec := range int16(5) {
		b := recrc(makeBatch(batchSpec{records: 1, attrs: codec}))
		if h := mustValidate(t, b); h.Compression() != int8(codec) {
			t.Fatalf("codec %d: got %d", codec, h.Compression())
		}
	}
}

func TestSetBaseOffsetKeepsCRC(t *testing.T) {
	b := makeBatch(batchSpec{baseOffset: -1, records: 4, valueSize: 3})
	SetBaseOffset(b, 1<<40+3)
	h := mustValidate(t, b)
	if h.BaseOffset != 1<<40+3 {
		t.Fatalf("base offset %d", h.BaseOffset)
	}
}

func TestNextBatch(t *testing.T) {
	a := makeBatch(batchSpec{records: 2, valueSize: 5})
	b := makeBatch(batchSpec{records: 3, valueSize: 1, seed: 9})
	buf := append(append([]byte(nil), a...), b...)

	got, rest, h, err := NextBatch(buf)
	if err != nil || !bytes.Equal(got, a) || h.NumRecords != 2 {
		t.Fatalf("first: %v %d", err, h.NumRecords)
	}
	got, rest, h, err = NextBatch(rest)
	if err != nil || !bytes.Equal(got, b) || h.NumRecords != 3 || len(rest) != 0 {
		t.Fatalf("second: %v %d rest=%d", err, h.NumRecords, len(rest))
	}
	if _, _, _, err := NextBatch(buf[:len(buf)-1][len(a):]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated: %v", err)
	}
	if _, _, _, err := NextBatch(v0Message()); !errors.Is(err, ErrUnsupportedMagic) {
		t.Fatalf("v0: %v", err)
	}
	huge := append([]byte(nil), a...)
	binary.BigEndian.PutUint32(huge[8:], 0x7fffffff)
	if _, _, _, err := NextBatch(huge); !errors.Is(err, ErrTruncated) {
		t.Fatalf("huge length: %v", err)
	}
	neg := append([]byte(nil), a...)
	binary.BigEndian.PutUint32(neg[8:], 0x80000000)
	if _, _, _, err := NextBatch(neg); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("negative length: %v", err)
	}
}

func TestPatchBaseOffsets(t *testing.T) {
	var chunk []byte
	for i := range 4 {
		chunk = append(chunk, makeBatch(batchSpec{baseOffset: -1, records: i + 1})...)
	}
	next, err := PatchBaseOffsets(chunk, 100)
	if err != nil || next != 100+1+2+3+4 {
		t.Fatalf("next %d err %v", next, err)
	}
	want := []int64{100, 101, 103, 106}
	it := NewBatchIter(chunk)
	for i := 0; it.Next(); i++ {
		if it.Header().BaseOffset != want[i] {
			t.Fatalf("batch %d base %d want %d", i, it.Header().BaseOffset, want[i])
		}
		mustValidate(t, it.Batch())
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
}
