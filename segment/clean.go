package segment

import (
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// attrDeleteHorizon is the batch attribute bit (KIP-534) saying that
// FirstTimestamp holds the batch's delete horizon: the time after which a
// log cleaner may remove its tombstones.
const attrDeleteHorizon = 0x40

// DeleteHorizon returns the batch's delete horizon (Unix ms) and whether it
// has one (attributes bit 6, KIP-534). A batch with one carries the horizon
// in FirstTimestamp; its records' timestamps are still FirstTimestamp plus
// their deltas.
func (h BatchHeader) DeleteHorizon() (int64, bool) {
	if h.Attributes&attrDeleteHorizon == 0 {
		return 0, false
	}
	return h.FirstTimestamp, true
}

// CleanRecord is what a log cleaner reads of one record.
type CleanRecord struct {
	OffsetDelta int32
	Timestamp   int64
	Key         []byte // nil: a null key; aliases the batch's (decompressed) bytes
	Value       []byte // nil: a null value; aliases like Key
	Tombstone   bool   // a null value
}

// cleanRecord is one decoded record and where its bytes are.
type cleanRecord struct {
	CleanRecord
	tsDelta int64
	attrs   byte
	rest    []byte // from the offset delta to the record's end
}

// records decodes every record of a whole, CRC-checked v2 batch,
// decompressing into at most maxDecompressed bytes. Records alias the
// decompressed bytes.
func records(batch []byte, maxDecompressed int) (BatchHeader, []cleanRecord, error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return h, nil, err
	}
	if err := checkMagic(batch); err != nil {
		return h, nil, err
	}
	if h.BatchLength < batchMinLength || h.Size() != len(batch) {
		return h, nil, fmt.Errorf("batch length %d with %d bytes present: %w", h.BatchLength, len(batch), ErrCorruptBatch)
	}
	if got := Checksum(batch[batchCRCStart:]); got != h.CRC {
		return h, nil, fmt.Errorf("batch crc %08x, computed %08x: %w", h.CRC, got, ErrCorruptBatch)
	}
	if h.NumRecords < 0 {
		return h, nil, fmt.Errorf("%d records: %w", h.NumRecords, ErrCorruptBatch)
	}
	if h.IsControl() || h.NumRecords == 0 {
		return h, nil, nil
	}
	return decodeRecords(h, batch, maxDecompressed)
}

// decodeRecords decodes the records of batch, whose header h has been
// checked (records does it), decompressing into at most maxDecompressed
// bytes.
func decodeRecords(h BatchHeader, batch []byte, maxDecompressed int) (BatchHeader, []cleanRecord, error) {
	raw, err := decompressRecords(h.Compression(), batch[BatchHeaderSize:], maxDecompressed)
	if err != nil {
		return h, nil, err
	}
	// Each record takes at least 7 bytes, so the count is bounded by the
	// bytes actually present, not by what the header claims.
	out := make([]cleanRecord, 0, min(int(h.NumRecords), len(raw)/7+1))
	for i := int32(0); i < h.NumRecords; i++ {
		r, rest, err := decodeRecord(raw)
		if err != nil {
			return h, nil, fmt.Errorf("record %d: %w", i, err)
		}
		if r.OffsetDelta > h.LastOffsetDelta {
			return h, nil, fmt.Errorf("record offset delta %d past last offset delta %d: %w", r.OffsetDelta, h.LastOffsetDelta, ErrCorruptBatch)
		}
		r.Timestamp = h.FirstTimestamp + r.tsDelta
		out = append(out, r)
		raw = rest
	}
	if len(raw) != 0 {
		return h, nil, fmt.Errorf("%d bytes after %d records: %w", len(raw), h.NumRecords, ErrCorruptBatch)
	}
	return h, out, nil
}

// decodeRecord decodes the record at the start of b: varint length, then
// attributes (int8), timestamp delta (varint), offset delta (varint), key
// and value (varint length, -1 for null, bytes) and headers.
func decodeRecord(b []byte) (cleanRecord, []byte, error) {
	var r cleanRecord
	length, n := binary.Varint(b)
	if n <= 0 || length < 1 || length > int64(len(b)-n) {
		return r, nil, fmt.Errorf("record length: %w", ErrCorruptBatch)
	}
	rec, rest := b[n:n+int(length)], b[n+int(length):]
	r.attrs, rec = rec[0], rec[1:]
	ts, n := binary.Varint(rec)
	if n <= 0 {
		return r, nil, fmt.Errorf("record timestamp delta: %w", ErrCorruptBatch)
	}
	r.tsDelta, rec = ts, rec[n:]
	r.rest = rec
	off, n := binary.Varint(rec)
	if n <= 0 || off < 0 || off > 1<<31-1 {
		return r, nil, fmt.Errorf("record offset delta: %w", ErrCorruptBatch)
	}
	r.OffsetDelta, rec = int32(off), rec[n:]
	key, rec, err := varbytes(rec)
	if err != nil {
		return r, nil, fmt.Errorf("record key: %w", err)
	}
	r.Key = key
	value, _, err := varbytes(rec)
	if err != nil {
		return r, nil, fmt.Errorf("record value: %w", err)
	}
	r.Value, r.Tombstone = value, value == nil
	return r, rest, nil
}

// varbytes splits a varint-length-prefixed byte string (-1: null) off b.
func varbytes(b []byte) (v, rest []byte, err error) {
	n, m := binary.Varint(b)
	switch {
	case m <= 0 || n < -1 || n > int64(len(b)-m):
		return nil, nil, ErrCorruptBatch
	case n == -1:
		return nil, b[m:], nil
	}
	return b[m : m+int(n) : m+int(n)], b[m+int(n):], nil
}

// WalkRecords calls fn with each record of batch (one whole v2 batch,
// whose CRC is checked), in order, decompressing into at most
// maxDecompressed bytes. Control batches and empty batches have no records
// to walk. The record's Key aliases memory that fn must not keep. Errors:
// ErrCorruptBatch, ErrTruncated, ErrTooLarge, or fn's.
func WalkRecords(batch []byte, maxDecompressed int, fn func(CleanRecord) error) error {
	_, recs, err := records(batch, maxDecompressed)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := fn(r.CleanRecord); err != nil {
			return err
		}
	}
	return nil
}

// FilterBatch appends to dst batch (one whole v2 batch, CRC checked) with
// only the records keep accepts, as a log cleaner rewrites it: the base
// offset, last offset delta, record offset deltas and timestamps,
// headers, producer id, epoch and base sequence, and the transactional
// bit are kept, so no offset moves; the records are compressed with zstd
// and the CRC recomputed. If horizon >= 0, the batch has no delete horizon
// yet and a kept record is a tombstone, the batch gets horizon as its
// delete horizon (KIP-534: attributes bit 6, FirstTimestamp = horizon,
// record timestamp deltas rebased so every record's timestamp stays).
//
// kept is how many records remain. When none does, FilterBatch appends an
// empty batch (no records, uncompressed) with the same header fields, which
// Kafka consumers skip over; the caller may drop it instead. Control
// batches and empty batches are appended unchanged with kept 0 and keep
// never called.
func FilterBatch(dst, batch []byte, keep func(CleanRecord) bool, horizon int64, enc *zstd.Encoder, maxDecompressed int) (out []byte, kept int, err error) {
	h, recs, err := records(batch, maxDecompressed)
	if err != nil {
		return dst, 0, err
	}
	if h.IsControl() || h.NumRecords == 0 {
		return append(dst, batch...), 0, nil
	}
	var keepers []cleanRecord
	tombstone := false
	for _, r := range recs {
		if keep(r.CleanRecord) {
			keepers = append(keepers, r)
			tombstone = tombstone || r.Tombstone
		}
	}
	if len(keepers) == len(recs) && !(tombstone && horizon >= 0 && h.Attributes&attrDeleteHorizon == 0) {
		// Nothing to change but the codec.
		out, err := RecompressZstd(dst, batch, enc, maxDecompressed)
		return out, len(recs), err
	}
	first := h.FirstTimestamp
	attrs := uint16(h.Attributes)
	if tombstone && horizon >= 0 && attrs&attrDeleteHorizon == 0 {
		first = horizon
		attrs |= attrDeleteHorizon
	}
	raw := rebasedRecords(keepers, first)
	start := len(dst)
	dst = append(dst, batch[:BatchHeaderSize]...)
	attrs &^= attrCompressionMask
	if len(keepers) > 0 {
		dst = enc.EncodeAll(raw, dst)
		attrs |= codecZstd
	}
	sealRewritten(dst[start:], attrs, first, len(keepers))
	return dst, len(keepers), nil
}

// rebasedRecords encodes recs (uncompressed) with their timestamp deltas
// taken from first, so each record's timestamp stays what it was.
func rebasedRecords(recs []cleanRecord, first int64) []byte {
	var raw, body []byte
	for _, r := range recs {
		body = append(body[:0], r.attrs)
		body = binary.AppendVarint(body, r.Timestamp-first)
		body = append(body, r.rest...)
		raw = binary.AppendVarint(raw, int64(len(body)))
		raw = append(raw, body...)
	}
	return raw
}

// sealRewritten finishes a batch b whose records were rewritten after its
// header: its length, attributes, first timestamp and record count, then
// its CRC.
func sealRewritten(b []byte, attrs uint16, first int64, records int) {
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(len(b)-batchLengthEnd))
	be.PutUint16(b[21:], attrs)
	be.PutUint64(b[27:], uint64(first))
	be.PutUint32(b[57:], uint32(records))
	be.PutUint32(b[batchCRCPos:], Checksum(b[batchCRCStart:]))
}
