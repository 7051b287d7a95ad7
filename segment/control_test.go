package segment_test

import (
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/segment"
)

// A marker built by ControlBatch is a well-formed batch that Kafka clients
// decode as a control record of the right type. (ValidateBatch refuses it:
// control batches never come from producers.)
func TestControlBatch(t *testing.T) {
	for _, commit := range []bool{false, true} {
		b := segment.ControlBatch(42, 7, commit, 3, 1_700_000_000_000)
		_, rest, hdr, err := segment.NextBatch(b)
		if err != nil || len(rest) != 0 {
			t.Fatalf("commit=%v: %v", commit, err)
		}
		if !hdr.IsControl() || !hdr.IsTransactional() || hdr.ProducerID != 42 || hdr.ProducerEpoch != 7 || hdr.OffsetCount() != 1 {
			t.Fatalf("commit=%v: header %+v", commit, hdr)
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatal(err)
		}
		if got := int32(crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))); got != rb.CRC {
			t.Fatalf("commit=%v: CRC %08x, batch says %08x", commit, got, rb.CRC)
		}
		var r kmsg.Record
		if err := r.ReadFrom(rb.Records); err != nil {
			t.Fatal(err)
		}
		var key kmsg.ControlRecordKey
		if err := key.ReadFrom(r.Key); err != nil {
			t.Fatal(err)
		}
		var val kmsg.EndTxnMarker
		if err := val.ReadFrom(r.Value); err != nil {
			t.Fatal(err)
		}
		want := kmsg.ControlRecordKeyType(0)
		if commit {
			want = 1
		}
		if key.Type != want || val.CoordinatorEpoch != 3 {
			t.Fatalf("commit=%v: marker type %d, coordinator epoch %d", commit, key.Type, val.CoordinatorEpoch)
		}
	}
}
