package segment

import (
	"encoding/binary"
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
	if len(batches) == 0 {
		return nil, ChunkInfo{}, fmt.Errorf("compacted segment of %s/%d: no batches", tp.Name, tp.Partition)
	}
	if len(tp.Name) > MaxTopicNameLen {
		return nil, ChunkInfo{}, fmt.Errorf("compacted segment: topic name of %d bytes", len(tp.Name))
	}
	var data int
	for _, b := range batches {
		data += len(b)
	}
	obj = make([]byte, 0, headerSize+data+footerEntryMin+len(tp.Name)+4+trailerSize)
	be := binary.BigEndian
	obj = append(obj, Magic...)
	obj = be.AppendUint16(obj, Version)
	obj = be.AppendUint16(obj, 0) // flags
	obj = be.AppendUint32(obj, 0) // reserved

	chunk = ChunkInfo{TopicID: tp.ID, Topic: tp.Name, Partition: tp.Partition, Position: int64(len(obj))}
	next := int64(-1)
	for i, b := range batches {
		h, err := ParseBatchHeader(b)
		if err != nil {
			return nil, ChunkInfo{}, fmt.Errorf("compacted segment of %s/%d: batch %d: %w", tp.Name, tp.Partition, i, err)
		}
		if h.Size() != len(b) {
			return nil, ChunkInfo{}, fmt.Errorf("compacted segment of %s/%d: batch %d of %d bytes says %d: %w",
				tp.Name, tp.Partition, i, len(b), h.Size(), ErrCorruptBatch)
		}
		if h.BaseOffset < next {
			return nil, ChunkInfo{}, fmt.Errorf("compacted segment of %s/%d: batch %d at offset %d after offset %d",
				tp.Name, tp.Partition, i, h.BaseOffset, next-1)
		}
		// A batch with a delete horizon holds the horizon, not a record's
		// timestamp, in FirstTimestamp; its max timestamp bounds its records.
		first := h.FirstTimestamp
		if _, ok := h.DeleteHorizon(); ok {
			first = h.MaxTimestamp
		}
		if i == 0 {
			chunk.BaseOffset = h.BaseOffset
			chunk.MinTimestamp, chunk.MaxTimestamp = first, h.MaxTimestamp
		}
		next = h.BaseOffset + h.OffsetCount()
		chunk.BatchCount++
		chunk.OffsetCount += h.OffsetCount()
		chunk.RecordCount += int64(h.NumRecords)
		chunk.MinTimestamp = min(chunk.MinTimestamp, first)
		chunk.MaxTimestamp = max(chunk.MaxTimestamp, h.MaxTimestamp)
		obj = append(obj, b...)
	}
	chunk.Length = int64(len(obj)) - chunk.Position
	chunk.CRC = Checksum(obj[chunk.Position:])
	footerPos := len(obj)
	obj = appendFooter(obj, []ChunkInfo{chunk})
	obj = appendTrailer(obj, int64(footerPos), len(obj)-footerPos, Checksum(obj[footerPos:]), 0)
	return obj, chunk, nil
}
