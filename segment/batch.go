package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// BatchHeaderSize is the size of the fixed header of a Kafka v2 record batch,
// from BaseOffset up to and including NumRecords.
const BatchHeaderSize = 61

// Byte positions inside a v2 record batch. The CRC covers everything from
// batchCRCStart to the end of the batch, so BaseOffset, BatchLength,
// PartitionLeaderEpoch and Magic can be rewritten without recomputing it.
const (
	batchLengthEnd = 12 // BaseOffset(8) + BatchLength(4); BatchLength counts the bytes after it
	batchMagicPos  = 16
	batchCRCPos    = 17
	batchCRCStart  = 21
	// batchMinLength is the smallest legal BatchLength: the header after the
	// length field, with no records.
	batchMinLength = BatchHeaderSize - batchLengthEnd
)

// Attribute bits of a v2 record batch.
const (
	attrCompressionMask = 0x07
	attrTransactional   = 0x10
	attrControl         = 0x20
	maxCompressionCodec = 4 // zstd
)

var (
	// ErrCorruptBatch means the bytes are not a well-formed v2 record batch:
	// bad CRC, inconsistent length, unknown compression codec. The Kafka
	// error code for it is CORRUPT_MESSAGE.
	ErrCorruptBatch = errors.New("corrupt record batch")
	// ErrInvalidRecord means the batch is well formed but not acceptable from
	// a producer: record count mismatch, or a control batch. The Kafka error
	// code for it is INVALID_RECORD.
	ErrInvalidRecord = errors.New("invalid record batch")
	// ErrUnsupportedMagic means the batch is an old-format (magic 0 or 1)
	// message set. The Kafka error code for it is
	// UNSUPPORTED_FOR_MESSAGE_FORMAT.
	ErrUnsupportedMagic = errors.New("unsupported record batch magic")
	// ErrTruncated means the bytes end before the batch does.
	ErrTruncated = errors.New("truncated record batch")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C (Castagnoli) of b, the checksum used by Kafka
// record batches and by every checksum in the segment format.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// BatchHeader is the decoded fixed header of a Kafka v2 record batch.
type BatchHeader struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size is the size of the whole batch in bytes, header included.
func (h BatchHeader) Size() int { return batchLengthEnd + int(h.BatchLength) }

// OffsetCount is the number of offsets the batch occupies. It can exceed
// NumRecords in compacted batches, whose records have gaps.
func (h BatchHeader) OffsetCount() int64 { return int64(h.LastOffsetDelta) + 1 }

// Compression is the codec of the batch's records: 0 none, 1 gzip,
// 2 snappy, 3 lz4, 4 zstd.
func (h BatchHeader) Compression() int8 { return int8(h.Attributes & attrCompressionMask) }

// IsTransactional reports whether the batch was written inside a transaction.
func (h BatchHeader) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports whether the batch is a control batch (transaction
// commit or abort marker).
func (h BatchHeader) IsControl() bool { return h.Attributes&attrControl != 0 }

// ParseBatchHeader decodes the fixed header at the start of b. It needs at
// least BatchHeaderSize bytes and checks nothing else: not the magic, not the
// CRC.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("batch header needs %d bytes, have %d: %w", BatchHeaderSize, len(b), ErrTruncated)
	}
	b = b[:BatchHeaderSize]
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:           int64(be.Uint64(b[0:])),
		BatchLength:          int32(be.Uint32(b[8:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[12:])),
		Magic:                int8(b[16]),
		CRC:                  be.Uint32(b[17:]),
		Attributes:           int16(be.Uint16(b[21:])),
		LastOffsetDelta:      int32(be.Uint32(b[23:])),
		FirstTimestamp:       int64(be.Uint64(b[27:])),
		MaxTimestamp:         int64(be.Uint64(b[35:])),
		ProducerID:           int64(be.Uint64(b[43:])),
		ProducerEpoch:        int16(be.Uint16(b[51:])),
		BaseSequence:         int32(be.Uint32(b[53:])),
		NumRecords:           int32(be.Uint32(b[57:])),
	}, nil
}

// checkMagic classifies the magic byte, which sits at offset 16 in every
// Kafka message format, so old message sets are recognised even when they are
// shorter than a v2 header.
func checkMagic(b []byte) error {
	if len(b) <= batchMagicPos {
		return fmt.Errorf("%d bytes, too short for a magic byte: %w", len(b), ErrTruncated)
	}
	switch m := int8(b[batchMagicPos]); m {
	case 2:
		return nil
	case 0, 1:
		return fmt.Errorf("magic %d: %w", m, ErrUnsupportedMagic)
	default:
		return fmt.Errorf("magic %d: %w", m, ErrCorruptBatch)
	}
}

// NextBatch splits the first v2 record batch off b and returns it, the bytes
// after it, and its header. It checks the structure only (magic and length),
// not the CRC, and never allocates: batch and rest alias b. Old-format
// message sets give ErrUnsupportedMagic, a batch that runs past the end of b
// gives ErrTruncated, garbage gives ErrCorruptBatch.
func NextBatch(b []byte) (batch, rest []byte, h BatchHeader, err error) {
	if err := checkMagic(b); err != nil {
		return nil, b, BatchHeader{}, err
	}
	h, err = ParseBatchHeader(b)
	if err != nil {
		return nil, b, BatchHeader{}, err
	}
	if h.BatchLength < batchMinLength {
		return nil, b, BatchHeader{}, fmt.Errorf("batch length %d below minimum %d: %w", h.BatchLength, batchMinLength, ErrCorruptBatch)
	}
	if h.LastOffsetDelta < 0 {
		return nil, b, BatchHeader{}, fmt.Errorf("last offset delta %d: %w", h.LastOffsetDelta, ErrCorruptBatch)
	}
	n := h.Size()
	if n > len(b) {
		return nil, b, BatchHeader{}, fmt.Errorf("batch of %d bytes, have %d: %w", n, len(b), ErrTruncated)
	}
	return b[:n:n], b[n:], h, nil
}

// ValidateBatch checks that b is exactly one complete v2 record batch that a
// producer may write: magic 2, consistent length, valid CRC-32C, a known
// compression codec, at least one record, LastOffsetDelta == NumRecords-1,
// and not a control batch. It does not decode the records.
func ValidateBatch(b []byte) (BatchHeader, error) {
	if err := checkMagic(b); err != nil {
		return BatchHeader{}, err
	}
	h, err := ParseBatchHeader(b)
	if err != nil {
		return BatchHeader{}, err
	}
	switch {
	case h.BatchLength < batchMinLength:
		return h, fmt.Errorf("batch length %d below minimum %d: %w", h.BatchLength, batchMinLength, ErrCorruptBatch)
	case h.Size() > len(b):
		return h, fmt.Errorf("batch of %d bytes, have %d: %w", h.Size(), len(b), ErrTruncated)
	case h.Size() < len(b):
		return h, fmt.Errorf("batch of %d bytes followed by %d more: %w", h.Size(), len(b)-h.Size(), ErrCorruptBatch)
	}
	if got := Checksum(b[batchCRCStart:]); got != h.CRC {
		return h, fmt.Errorf("batch crc %08x, computed %08x: %w", h.CRC, got, ErrCorruptBatch)
	}
	if c := h.Compression(); c > maxCompressionCodec {
		return h, fmt.Errorf("compression codec %d: %w", c, ErrCorruptBatch)
	}
	switch {
	case h.NumRecords < 1:
		return h, fmt.Errorf("batch with %d records: %w", h.NumRecords, ErrInvalidRecord)
	case h.LastOffsetDelta != h.NumRecords-1:
		return h, fmt.Errorf("last offset delta %d with %d records: %w", h.LastOffsetDelta, h.NumRecords, ErrInvalidRecord)
	case h.IsControl():
		return h, fmt.Errorf("control batch from a producer: %w", ErrInvalidRecord)
	}
	return h, nil
}

// SetBaseOffset rewrites the batch's BaseOffset in place. The batch CRC does
// not cover it, so the batch stays valid. batch must hold at least 8 bytes.
func SetBaseOffset(batch []byte, off int64) {
	binary.BigEndian.PutUint64(batch[:8], uint64(off))
}

// SetLeaderEpoch rewrites the batch's PartitionLeaderEpoch in place. Like
// the base offset, the batch CRC does not cover it. batch must hold at least
// 16 bytes.
func SetLeaderEpoch(batch []byte, epoch int32) {
	binary.BigEndian.PutUint32(batch[12:16], uint32(epoch))
}

// PatchBaseOffsets walks the batches of a chunk and gives them consecutive
// base offsets starting at base, as readers of write-path segments must
// (see FORMAT.md). It returns the offset after the last batch. The chunk is
// modified in place; on error the batches before the bad one are patched.
func PatchBaseOffsets(chunk []byte, base int64) (next int64, err error) {
	for len(chunk) > 0 {
		batch, rest, h, err := NextBatch(chunk)
		if err != nil {
			return base, err
		}
		SetBaseOffset(batch, base)
		base += h.OffsetCount()
		chunk = rest
	}
	return base, nil
}
