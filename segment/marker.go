package segment

import (
	"encoding/binary"
	"fmt"
)

// maxMarkerBytes bounds what a marker's records may decompress to: Kafka
// writes one record of a few bytes, uncompressed.
const maxMarkerBytes = 1 << 10

// markerRecords decodes the records of a control batch (a transaction
// marker), CRC checked.
func markerRecords(batch []byte) (BatchHeader, []cleanRecord, error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return h, nil, err
	}
	if !h.IsControl() {
		return h, nil, fmt.Errorf("not a control batch: %w", ErrInvalidRecord)
	}
	if _, _, err := records(batch, maxMarkerBytes); err != nil { // the header and CRC checks
		return h, nil, err
	}
	return decodeRecords(h, batch, maxMarkerBytes)
}

// MarkerCommits reports whether a transaction marker commits its
// transaction (else it aborts it): the type in its record's key (version
// int16, type int16: 0 abort, 1 commit), as ControlBatch writes it.
func MarkerCommits(batch []byte) (bool, error) {
	_, recs, err := markerRecords(batch)
	if err != nil {
		return false, err
	}
	if len(recs) == 0 || len(recs[0].Key) < 4 {
		return false, fmt.Errorf("control batch without a control record key: %w", ErrCorruptBatch)
	}
	switch typ := binary.BigEndian.Uint16(recs[0].Key[2:]); typ {
	case 0:
		return false, nil
	case 1:
		return true, nil
	default:
		return false, fmt.Errorf("control record type %d is not a transaction marker: %w", typ, ErrInvalidRecord)
	}
}

// StampMarkerHorizon appends to dst marker with horizon as its delete
// horizon (KIP-534: attributes bit 6, FirstTimestamp = horizon, record
// timestamp deltas rebased so every record's timestamp stays), which is how
// a log cleaner dates the first pass over a marker; the marker goes once
// that horizon has passed and its transaction has no record left. A marker
// that has a horizon is appended unchanged. The records stay uncompressed,
// as Kafka writes markers.
func StampMarkerHorizon(dst, marker []byte, horizon int64) ([]byte, error) {
	h, recs, err := markerRecords(marker)
	if err != nil {
		return dst, err
	}
	if _, ok := h.DeleteHorizon(); ok {
		return append(dst, marker...), nil
	}
	start := len(dst)
	dst = append(dst, marker[:BatchHeaderSize]...)
	dst = append(dst, rebasedRecords(recs, horizon)...)
	sealRewritten(dst[start:], uint16(h.Attributes)&^attrCompressionMask|attrDeleteHorizon, horizon, len(recs))
	return dst, nil
}
