package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// ErrTooLarge means a batch's records decompress to more than the caller's
// bound. Producers choose what they compress, so a small batch can claim
// gigabytes (a decompression bomb); nothing here ever allocates more than
// the bound, plus a constant.
var ErrTooLarge = errors.New("record batch decompresses beyond the bound")

// ErrNoRecord means no record of the batch satisfies the search.
var ErrNoRecord = errors.New("no matching record in batch")

// FirstRecordAtOrAfter returns the offset delta and timestamp of the first
// record of batch (one whole v2 record batch) whose timestamp is at least
// ts. It decompresses the records if needed, into at most maxDecompressed
// bytes: a batch whose records are larger fails with ErrTooLarge. Errors:
// ErrNoRecord, ErrTooLarge, ErrTruncated or ErrCorruptBatch (including
// records that do not decode).
func FirstRecordAtOrAfter(batch []byte, ts int64, maxDecompressed int) (offsetDelta int32, timestamp int64, err error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return 0, 0, err
	}
	if err := checkMagic(batch); err != nil {
		return 0, 0, err
	}
	if h.BatchLength < batchMinLength || h.Size() > len(batch) {
		return 0, 0, fmt.Errorf("batch length %d with %d bytes present: %w", h.BatchLength, len(batch), ErrTruncated)
	}
	raw, err := decompressRecords(h.Compression(), batch[BatchHeaderSize:h.Size()], maxDecompressed)
	if err != nil {
		return 0, 0, err
	}
	for i := int32(0); i < h.NumRecords && len(raw) > 0; i++ {
		rec, rest, err := nextRecord(raw)
		if err != nil {
			return 0, 0, err
		}
		raw = rest
		if t := h.FirstTimestamp + rec.timestampDelta; t >= ts {
			return rec.offsetDelta, t, nil
		}
	}
	return 0, 0, ErrNoRecord
}

// recordPos is the part of a record a timestamp search needs.
type recordPos struct {
	timestampDelta int64
	offsetDelta    int32
}

// nextRecord decodes the length, timestamp delta and offset delta of the
// record at the start of b and returns the bytes after it. A record is a
// varint length, then attributes (int8), timestamp delta (varint), offset
// delta (varint), key, value and headers.
func nextRecord(b []byte) (recordPos, []byte, error) {
	length, n := binary.Varint(b)
	if n <= 0 || length < 1 || length > int64(len(b)-n) {
		return recordPos{}, nil, fmt.Errorf("record length: %w", ErrCorruptBatch)
	}
	rec, rest := b[n:n+int(length)], b[n+int(length):]
	rec = rec[1:] // attributes
	tsDelta, n := binary.Varint(rec)
	if n <= 0 {
		return recordPos{}, nil, fmt.Errorf("record timestamp delta: %w", ErrCorruptBatch)
	}
	offDelta, m := binary.Varint(rec[n:])
	if m <= 0 || offDelta < 0 || offDelta > 1<<31-1 {
		return recordPos{}, nil, fmt.Errorf("record offset delta: %w", ErrCorruptBatch)
	}
	return recordPos{timestampDelta: tsDelta, offsetDelta: int32(offDelta)}, rest, nil
}

// decompressRecords returns the uncompressed records of a batch, at most
// limit bytes of them.
func decompressRecords(codec int8, src []byte, limit int) ([]byte, error) {
	switch codec {
	case 0:
		return src, nil
	case 1:
		zr, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("gzip: %v: %w", err, ErrCorruptBatch)
		}
		return readAtMost(zr, limit)
	case 2:
		return snappyDecode(src, limit)
	case 3:
		return readAtMost(lz4.NewReader(bytes.NewReader(src)), limit)
	case 4:
		return zstdDecode(src, limit)
	}
	return nil, fmt.Errorf("compression codec %d: %w", codec, ErrCorruptBatch)
}

// readAtMost reads r to its end into a buffer that grows with what arrives
// and never beyond limit (plus the buffer's doubling).
func readAtMost(r io.Reader, limit int) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, int64(limit)+1))
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return nil, ErrTooLarge
	case err != nil:
		return nil, fmt.Errorf("decompress: %v: %w", err, ErrCorruptBatch)
	}
	if n > int64(limit) {
		return nil, ErrTooLarge
	}
	return buf.Bytes(), nil
}

// xerialMagic starts snappy data framed the way the Java client writes it:
// the magic, two int32 versions, then blocks, each a big-endian int32
// length and a raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// snappyDecode decodes raw or xerial-framed snappy. Each raw block states its
// decoded length up front; it is checked before anything is allocated.
func snappyDecode(src []byte, limit int) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return snappyBlock(nil, src, limit)
	}
	if len(src) < len(xerialMagic)+8 {
		return nil, fmt.Errorf("xerial snappy header: %w", ErrCorruptBatch)
	}
	src = src[len(xerialMagic)+8:]
	var out []byte
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, fmt.Errorf("xerial snappy block length: %w", ErrCorruptBatch)
		}
		n := binary.BigEndian.Uint32(src)
		if uint64(n) > uint64(len(src)-4) {
			return nil, fmt.Errorf("xerial snappy block of %d bytes with %d left: %w", n, len(src)-4, ErrCorruptBatch)
		}
		var err error
		if out, err = snappyBlock(out, src[4:4+n], limit); err != nil {
			return nil, err
		}
		src = src[4+n:]
	}
	return out, nil
}

// snappyBlock appends the decoding of one raw snappy block to out, keeping
// len(out) within limit.
func snappyBlock(out, block []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, fmt.Errorf("snappy: %v: %w", err, ErrCorruptBatch)
	}
	if n > limit-len(out) {
		return nil, ErrTooLarge
	}
	dec, err := s2.Decode(nil, block)
	if err != nil {
		return nil, fmt.Errorf("snappy: %v: %w", err, ErrCorruptBatch)
	}
	if out == nil {
		return dec, nil
	}
	return append(out, dec...), nil
}

// zstdMaxWindow bounds the history a zstd frame may ask the decoder to keep;
// producers' frames of one batch need far less.
const zstdMaxWindow = 8 << 20

// zstdDecode decodes every frame of src into at most limit bytes. It
// streams: the output grows with what is decoded, and the decoder refuses a
// frame whose window is over zstdMaxWindow before allocating it.
func zstdDecode(src []byte, limit int) ([]byte, error) {
	dec, err := zstd.NewReader(bytes.NewReader(src),
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(uint64(max(limit, zstd.MinWindowSize))),
		zstd.WithDecoderMaxWindow(uint64(min(max(limit, zstd.MinWindowSize), zstdMaxWindow))),
	)
	if err != nil {
		return nil, fmt.Errorf("zstd: %v: %w", err, ErrCorruptBatch)
	}
	defer dec.Close()
	return readAtMost(dec, limit)
}
