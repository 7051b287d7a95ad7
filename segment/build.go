package segment

import (
	"encoding/binary"
	"math"
)

// Record is one record for BuildBatch.
type Record struct {
	OffsetDelta int32 // offset minus the batch's base offset; increasing, gaps allowed
	TimestampMs int64
	Key         []byte // nil: a null key
	Value       []byte // nil: a null value (a tombstone)
}

// BuildBatch builds an uncompressed, non-transactional v2 record batch at
// baseOffset holding recs (at least one), as a broker serves records it
// writes itself: no producer id, epoch or sequence. Offset deltas may skip
// numbers, as in a compacted log; the last record's delta is the batch's
// last offset delta.
func BuildBatch(baseOffset int64, recs []Record) []byte {
	first, maxTs := recs[0].TimestampMs, recs[0].TimestampMs
	for _, r := range recs {
		first, maxTs = min(first, r.TimestampMs), max(maxTs, r.TimestampMs)
	}
	b := make([]byte, BatchHeaderSize, BatchHeaderSize+64*len(recs))
	var rec []byte
	for _, r := range recs {
		rec = rec[:0]
		rec = append(rec, 0) // attributes
		rec = binary.AppendVarint(rec, r.TimestampMs-first)
		rec = binary.AppendVarint(rec, int64(r.OffsetDelta))
		rec = appendVarbytes(rec, r.Key)
		rec = appendVarbytes(rec, r.Value)
		rec = binary.AppendVarint(rec, 0) // headers
		b = binary.AppendVarint(b, int64(len(rec)))
		b = append(b, rec...)
	}
	binary.BigEndian.PutUint64(b[0:], uint64(baseOffset))
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-batchLengthEnd))
	binary.BigEndian.PutUint32(b[12:], 0) // partition leader epoch
	b[batchMagicPos] = 2
	binary.BigEndian.PutUint16(b[21:], 0) // attributes: uncompressed, create time
	binary.BigEndian.PutUint32(b[23:], uint32(recs[len(recs)-1].OffsetDelta))
	binary.BigEndian.PutUint64(b[27:], uint64(first))
	binary.BigEndian.PutUint64(b[35:], uint64(maxTs))
	binary.BigEndian.PutUint64(b[43:], math.MaxUint64) // producer id -1
	binary.BigEndian.PutUint16(b[51:], math.MaxUint16) // producer epoch -1
	binary.BigEndian.PutUint32(b[53:], math.MaxUint32) // base sequence -1
	binary.BigEndian.PutUint32(b[57:], uint32(len(recs)))
	binary.BigEndian.PutUint32(b[batchCRCPos:], Checksum(b[batchCRCStart:]))
	return b
}

func appendVarbytes(dst, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}
