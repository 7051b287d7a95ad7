package segment

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestFilterBatchKeepsOffsetsAndSetsHorizon(t *testing.T) {
	enc, err := NewZstdEncoder()
	if err != nil {
		t.Fatal(err)
	}
	recs := []Record{
		{OffsetDelta: 0, TimestampMs: 1000, Key: []byte("a"), Value: []byte("a0")},
		{OffsetDelta: 1, TimestampMs: 1005, Key: []byte("b"), Value: nil}, // tombstone
		{OffsetDelta: 2, TimestampMs: 1002, Key: []byte("a"), Value: []byte("a2")},
		{OffsetDelta: 4, TimestampMs: 1010, Key: nil, Value: []byte("nokey")},
	}
	batch := BuildBatch(100, recs)
	in, err := ParseBatchHeader(batch)
	if err != nil {
		t.Fatal(err)
	}

	var walked []CleanRecord
	if err := WalkRecords(batch, 1<<20, func(r CleanRecord) error { walked = append(walked, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 4 || string(walked[2].Key) != "a" || walked[2].Timestamp != 1002 || !walked[1].Tombstone || walked[3].Key != nil {
		t.Fatalf("walked %+v", walked)
	}

	// Keep the latest a and the tombstone: offset deltas 1 and 2.
	out, kept, err := FilterBatch(nil, batch, func(r CleanRecord) bool { return r.OffsetDelta == 1 || r.OffsetDelta == 2 }, 5000, enc, 1<<20)
	if err != nil || kept != 2 {
		t.Fatalf("FilterBatch = %d, %v", kept, err)
	}
	h, err := ParseBatchHeader(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := Checksum(out[batchCRCStart:]); got != h.CRC || h.Size() != len(out) {
		t.Fatalf("crc %08x computed %08x, size %d of %d", h.CRC, got, h.Size(), len(out))
	}
	if h.BaseOffset != 100 || h.LastOffsetDelta != in.LastOffsetDelta || h.MaxTimestamp != in.MaxTimestamp ||
		h.ProducerID != in.ProducerID || h.NumRecords != 2 || h.Compression() != codecZstd {
		t.Fatalf("header %+v from %+v", h, in)
	}
	if hz, ok := h.DeleteHorizon(); !ok || hz != 5000 {
		t.Fatalf("delete horizon %d, %v; want 5000", hz, ok)
	}
	walked = nil
	if err := WalkRecords(out, 1<<20, func(r CleanRecord) error {
		r.Key = append([]byte(nil), r.Key...)
		walked = append(walked, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 2 || walked[0].OffsetDelta != 1 || walked[0].Timestamp != 1005 || !walked[0].Tombstone ||
		walked[1].OffsetDelta != 2 || walked[1].Timestamp != 1002 || string(walked[1].Key) != "a" {
		t.Fatalf("after filtering: %+v", walked)
	}

	// A second cleaning keeps the horizon it found.
	again, kept, err := FilterBatch(nil, out, func(r CleanRecord) bool { return r.Tombstone }, 9000, enc, 1<<20)
	if err != nil || kept != 1 {
		t.Fatalf("second FilterBatch = %d, %v", kept, err)
	}
	if h2, _ := ParseBatchHeader(again); h2.FirstTimestamp != 5000 {
		t.Fatalf("second cleaning moved the horizon to %d", h2.FirstTimestamp)
	}

	// Nothing kept: an empty batch covering the same offsets.
	empty, kept, err := FilterBatch(nil, batch, func(CleanRecord) bool { return false }, -1, enc, 1<<20)
	if err != nil || kept != 0 {
		t.Fatalf("FilterBatch(none) = %d, %v", kept, err)
	}
	eh, _ := ParseBatchHeader(empty)
	if len(empty) != BatchHeaderSize || eh.NumRecords != 0 || eh.BaseOffset != 100 || eh.LastOffsetDelta != 4 || eh.Compression() != 0 ||
		Checksum(empty[batchCRCStart:]) != eh.CRC {
		t.Fatalf("empty batch %+v (%d bytes)", eh, len(empty))
	}
	if err := WalkRecords(empty, 1<<20, func(CleanRecord) error { t.Fatal("record in an empty batch"); return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestFilterBatchRefusesCorrupt(t *testing.T) {
	enc, err := NewZstdEncoder()
	if err != nil {
		t.Fatal(err)
	}
	batch := BuildBatch(0, []Record{{Key: []byte("k"), Value: []byte("v")}})
	// A record count beyond the records present.
	bad := append([]byte(nil), batch...)
	binary.BigEndian.PutUint32(bad[57:], 1<<30)
	recrc(bad)
	if _, _, err := FilterBatch(nil, bad, func(CleanRecord) bool { return true }, -1, enc, 1<<20); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("FilterBatch of a batch claiming 2^30 records: %v", err)
	}
	bad = append([]byte(nil), batch...)
	bad[len(bad)-1] ^= 1
	if err := WalkRecords(bad, 1<<20, func(CleanRecord) error { return nil }); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("WalkRecords with a bad crc: %v", err)
	}
}

func FuzzFilterBatch(f *testing.F) {
	f.Add(BuildBatch(7, []Record{{Key: []byte("k"), Value: nil}, {OffsetDelta: 3, Key: []byte("j"), Value: []byte("v")}}))
	f.Add(makeBatch(batchSpec{records: 3, valueSize: 10}))
	enc, err := NewZstdEncoder()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		odd := false
		out, _, err := FilterBatch(nil, b, func(CleanRecord) bool { odd = !odd; return odd }, 1, enc, 1<<16)
		if err != nil {
			return
		}
		h, err := ParseBatchHeader(out)
		if err != nil || h.Size() != len(out) || Checksum(out[batchCRCStart:]) != h.CRC {
			t.Fatalf("FilterBatch gave a bad batch: %+v %v", h, err)
		}
		in, _ := ParseBatchHeader(b)
		if h.BaseOffset != in.BaseOffset || h.LastOffsetDelta != in.LastOffsetDelta || h.ProducerID != in.ProducerID {
			t.Fatalf("header %+v from %+v", h, in)
		}
	})
}
