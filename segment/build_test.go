package segment_test

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/segment"
)

// A batch from BuildBatch is well formed (ValidateBatch would refuse its
// gaps: producers' batches have none) and decodes, record by record, to
// what went in, gaps in offsets included.
func TestBuildBatch(t *testing.T) {
	recs := []segment.Record{
		{OffsetDelta: 0, TimestampMs: 1_700_000_000_500, Key: []byte("k0"), Value: []byte("v0")},
		{OffsetDelta: 3, TimestampMs: 1_700_000_000_000, Key: []byte("k1"), Value: nil},
		{OffsetDelta: 7, TimestampMs: 1_700_000_000_900, Key: nil, Value: []byte{}},
	}
	b := segment.BuildBatch(1000, recs)
	_, rest, hdr, err := segment.NextBatch(b)
	if err != nil || len(rest) != 0 {
		t.Fatal(err)
	}
	if hdr.BaseOffset != 1000 || hdr.OffsetCount() != 8 || hdr.NumRecords != 3 || hdr.ProducerID != -1 ||
		hdr.FirstTimestamp != 1_700_000_000_000 || hdr.MaxTimestamp != 1_700_000_000_900 {
		t.Fatalf("header %+v", hdr)
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	if rb.CRC != int32(segment.Checksum(b[21:])) {
		t.Fatalf("CRC %08x does not match", rb.CRC)
	}
	rest = rb.Records
	for i, want := range recs {
		var r kmsg.Record
		if err := r.ReadFrom(rest); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		rest = rest[r.Length+int32(varintLen(int64(r.Length))):]
		if r.OffsetDelta != want.OffsetDelta || rb.FirstTimestamp+r.TimestampDelta64 != want.TimestampMs ||
			!bytes.Equal(r.Key, want.Key) || (r.Key == nil) != (want.Key == nil) ||
			!bytes.Equal(r.Value, want.Value) || (r.Value == nil) != (want.Value == nil) {
			t.Fatalf("record %d = %+v, want %+v", i, r, want)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the records", len(rest))
	}
}

func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}
