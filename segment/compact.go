package segment

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// codecZstd is the attributes codec of zstd-compressed records.
const codecZstd = 4

// NewZstdEncoder returns an encoder for RecompressZstd. Its window is kept
// within what this package's decoder (and Kafka clients') accept.
func NewZstdEncoder() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil,
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(1<<20),
		zstd.WithEncoderLevel(zstd.SpeedDefault),
	)
}

// RecompressZstd appends to dst the batch (one whole, valid v2 record
// batch) with its records compressed with zstd, as compaction stores them.
// Everything else is kept exactly: base offset, leader epoch, last offset
// delta, timestamps, producer id, epoch and sequence, record count, and
// the transactional and timestamp-type attributes; the batch length and the
// Kafka CRC are recomputed. Control batches (transaction markers, which
// Kafka never compresses) and batches already in zstd are appended
// unchanged. A batch whose CRC does not match fails with ErrCorruptBatch;
// records that decompress beyond maxDecompressed bytes fail with
// ErrTooLarge.
func RecompressZstd(dst, batch []byte, enc *zstd.Encoder, maxDecompressed int) ([]byte, error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return dst, err
	}
	if err := checkMagic(batch); err != nil {
		return dst, err
	}
	if h.BatchLength < batchMinLength || h.Size() != len(batch) {
		return dst, fmt.Errorf("batch length %d with %d bytes present: %w", h.BatchLength, len(batch), ErrCorruptBatch)
	}
	if got := Checksum(batch[batchCRCStart:]); got != h.CRC {
		return dst, fmt.Errorf("batch crc %08x, computed %08x: %w", h.CRC, got, ErrCorruptBatch)
	}
	if h.IsControl() || h.Compression() == codecZstd {
		return append(dst, batch...), nil
	}
	raw, err := decompressRecords(h.Compression(), batch[BatchHeaderSize:], maxDecompressed)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	dst = append(dst, batch[:BatchHeaderSize]...)
	dst = enc.EncodeAll(raw, dst)
	b := dst[start:]
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(len(b)-batchLengthEnd))
	attrs := uint16(h.Attributes)&^attrCompressionMask | codecZstd
	be.PutUint16(b[21:], attrs)
	be.PutUint32(b[batchCRCPos:], Checksum(b[batchCRCStart:]))
	return dst, nil
}

// CompactedObject builds a compacted segment (see FORMAT.md): one chunk
// holding batches of tp back to back, each already carrying its real base
// offset, in increasing offset order (gaps allowed). The footer's base
// offset is the first batch's. batches must be whole, valid v2 batches; an
// empty list, a batch that does not parse, or offsets that do not increase
// give an error.
func CompactedObject(tp TopicRef, batches [][]byte) (obj []byte, chunk ChunkInfo, err error) {
	var data int
	for _, b := range batches {
		data += len(b)
	}
	cb, err := NewCompactedBuilder(tp, data)
	if err != nil {
		return nil, ChunkInfo{}, err
	}
	for _, b := range batches {
		if err := cb.Append(b); err != nil {
			return nil, ChunkInfo{}, err
		}
	}
	return cb.Finish()
}

// CompactedBuilder builds a compacted segment batch by batch in one buffer,
// so a compactor holds its output once, not once as batches and again as
// the object.
type CompactedBuilder struct {
	tp    TopicRef
	obj   []byte
	chunk ChunkInfo
	next  int64 // the offset after the last batch; -1 before the first
}

// NewCompactedBuilder starts a compacted segment of tp; sizeHint is the
// batch bytes expected (the buffer grows past it if need be).
func NewCompactedBuilder(tp TopicRef, sizeHint int) (*CompactedBuilder, error) {
	if len(tp.Name) > MaxTopicNameLen {
		return nil, fmt.Errorf("compacted segment: topic name of %d bytes", len(tp.Name))
	}
	b := &CompactedBuilder{tp: tp, next: -1}
	b.obj = make([]byte, 0, headerSize+max(sizeHint, 0)+footerEntryMin+len(tp.Name)+4+trailerSize)
	be := binary.BigEndian
	b.obj = append(b.obj, Magic...)
	b.obj = be.AppendUint16(b.obj, Version)
	b.obj = be.AppendUint16(b.obj, 0) // flags
	b.obj = be.AppendUint32(b.obj, 0) // reserved
	b.chunk = ChunkInfo{TopicID: tp.ID, Topic: tp.Name, Partition: tp.Partition, Position: int64(len(b.obj))}
	return b, nil
}

// Size is the bytes of batches appended so far.
func (b *CompactedBuilder) Size() int64 { return int64(len(b.obj)) - b.chunk.Position }

// Append appends one whole v2 batch carrying its real base offset.
func (b *CompactedBuilder) Append(batch []byte) error {
	start := len(b.obj)
	b.obj = append(b.obj, batch...)
	return b.added(start)
}

// AppendZstd appends batch (one whole, valid v2 batch) as RecompressZstd
// rewrites it, with base as its base offset; a batch whose records would
// decompress beyond maxDecompressed is appended as it is.
func (b *CompactedBuilder) AppendZstd(batch []byte, base int64, enc *zstd.Encoder, maxDecompressed int) error {
	start := len(b.obj)
	var err error
	b.obj, err = RecompressZstd(b.obj, batch, enc, maxDecompressed)
	if errors.Is(err, ErrTooLarge) {
		b.obj, err = append(b.obj[:start], batch...), nil
	}
	if err != nil {
		b.obj = b.obj[:start]
		return err
	}
	SetBaseOffset(b.obj[start:], base)
	return b.added(start)
}

// added checks the batch appended at start and accounts for it; a batch
// that does not belong is taken out again.
func (b *CompactedBuilder) added(start int) error {
	batch := b.obj[start:]
	fail := func(err error) error {
		b.obj = b.obj[:start]
		return err
	}
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return fail(fmt.Errorf("compacted segment of %s/%d: batch %d: %w", b.tp.Name, b.tp.Partition, b.chunk.BatchCount, err))
	}
	if h.Size() != len(batch) {
		return fail(fmt.Errorf("compacted segment of %s/%d: batch %d of %d bytes says %d: %w",
			b.tp.Name, b.tp.Partition, b.chunk.BatchCount, len(batch), h.Size(), ErrCorruptBatch))
	}
	if h.BaseOffset < b.next {
		return fail(fmt.Errorf("compacted segment of %s/%d: batch %d at offset %d after offset %d",
			b.tp.Name, b.tp.Partition, b.chunk.BatchCount, h.BaseOffset, b.next-1))
	}
	// A batch with a delete horizon holds the horizon, not a record's
	// timestamp, in FirstTimestamp; its max timestamp bounds its records.
	first := h.FirstTimestamp
	if _, ok := h.DeleteHorizon(); ok {
		first = h.MaxTimestamp
	}
	if b.chunk.BatchCount == 0 {
		b.chunk.BaseOffset = h.BaseOffset
		b.chunk.MinTimestamp, b.chunk.MaxTimestamp = first, h.MaxTimestamp
	}
	b.next = h.BaseOffset + h.OffsetCount()
	b.chunk.BatchCount++
	b.chunk.OffsetCount += h.OffsetCount()
	b.chunk.RecordCount += int64(h.NumRecords)
	b.chunk.MinTimestamp = min(b.chunk.MinTimestamp, first)
	b.chunk.MaxTimestamp = max(b.chunk.MaxTimestamp, h.MaxTimestamp)
	return nil
}

// Finish completes the segment: the footer and trailer after the batches.
// The builder must not be used after.
func (b *CompactedBuilder) Finish() (obj []byte, chunk ChunkInfo, err error) {
	if b.chunk.BatchCount == 0 {
		return nil, ChunkInfo{}, fmt.Errorf("compacted segment of %s/%d: no batches", b.tp.Name, b.tp.Partition)
	}
	obj = b.obj
	b.obj = nil
	chunk = b.chunk
	chunk.Length = int64(len(obj)) - chunk.Position
	chunk.CRC = Checksum(obj[chunk.Position:])
	footerPos := len(obj)
	obj = appendFooter(obj, []ChunkInfo{chunk})
	obj = appendTrailer(obj, int64(footerPos), len(obj)-footerPos, Checksum(obj[footerPos:]), 0)
	return obj, chunk, nil
}
