package segment

import (
	"bytes"
	"errors"
	"testing"
)

// A marker says which way it ends its transaction; stamping a delete
// horizon dates it without changing what a consumer reads of it, and a
// second stamp changes nothing.
func TestMarkerCommitsAndHorizon(t *testing.T) {
	for _, commit := range []bool{true, false} {
		m := ControlBatch(7, 3, commit, 5, 1_000)
		got, err := MarkerCommits(m)
		if err != nil || got != commit {
			t.Fatalf("MarkerCommits(commit=%v) = %v, %v", commit, got, err)
		}
		stamped, err := StampMarkerHorizon([]byte("x"), m, 90_000)
		if err != nil {
			t.Fatal(err)
		}
		if stamped[0] != 'x' {
			t.Fatal("StampMarkerHorizon did not append to dst")
		}
		stamped = stamped[1:]
		h, err := ParseBatchHeader(stamped)
		if err != nil {
			t.Fatalf("stamped marker: %v", err)
		}
		if hz, ok := h.DeleteHorizon(); !ok || hz != 90_000 {
			t.Fatalf("stamped horizon %d, %v; want 90000", hz, ok)
		}
		if !h.IsControl() || !h.IsTransactional() || h.ProducerID != 7 || h.ProducerEpoch != 3 || h.NumRecords != 1 {
			t.Fatalf("stamped header %+v lost the marker's fields", h)
		}
		_, recs, err := markerRecords(stamped)
		if err != nil || len(recs) != 1 || recs[0].Timestamp != 1_000 {
			t.Fatalf("stamped record %+v, %v; want its timestamp 1000 kept", recs, err)
		}
		if got, err := MarkerCommits(stamped); err != nil || got != commit {
			t.Fatalf("MarkerCommits(stamped) = %v, %v", got, err)
		}
		again, err := StampMarkerHorizon(nil, stamped, 200_000)
		if err != nil || !bytes.Equal(again, stamped) {
			t.Fatalf("a second stamp changed the marker (%v)", err)
		}
	}
	data := BuildBatch(0, []Record{{Key: []byte("k"), Value: []byte("v")}})
	if _, err := MarkerCommits(data); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("MarkerCommits(data batch) = %v, want ErrInvalidRecord", err)
	}
	bad := ControlBatch(7, 3, true, 5, 1_000)
	bad[len(bad)-1] ^= 1
	if _, err := StampMarkerHorizon(nil, bad, 1); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("StampMarkerHorizon(corrupt) = %v, want ErrCorruptBatch", err)
	}
}
