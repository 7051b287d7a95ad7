package segment

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/siltstream/silt/objectstore"
)

// Reader gives access to the chunks of one segment object, either in a
// bucket (Open) or in memory (Parse). It is safe for concurrent use.
type Reader struct {
	version int
	flags   uint16
	size    int64
	chunks  []ChunkInfo

	obj    []byte // whole object, for Parse
	bucket objectstore.Bucket
	key    string
}

// trailer is the decoded fixed-size end of a segment.
type trailer struct {
	footerPos int64
	footerLen int64
	footerCRC uint32
	flags     uint16
	version   int
}

// Open reads the index of the segment stored under key: a Head for its size,
// then a ranged Get of the trailer and one of the footer. Chunks are read
// later, one ranged Get each, by ReadChunk.
func Open(ctx context.Context, b objectstore.Bucket, key string) (*Reader, error) {
	attrs, err := b.Head(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", key, err)
	}
	return OpenSize(ctx, b, key, attrs.Size)
}

// OpenSize is Open for callers that already know the object's size (from
// the metastore, or a listing), saving the Head request.
func OpenSize(ctx context.Context, b objectstore.Bucket, key string, size int64) (*Reader, error) {
	if size < headerSize+trailerSize {
		return nil, fmt.Errorf("open segment %s: %d bytes is too short: %w", key, size, ErrNotSegment)
	}
	tb, err := b.Get(ctx, key, size-trailerSize, trailerSize)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: read trailer: %w", key, err)
	}
	if len(tb) != trailerSize {
		return nil, fmt.Errorf("open segment %s: read trailer: got %d bytes: %w", key, len(tb), ErrCorruptSegment)
	}
	t, err := parseTrailer(tb, size)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", key, err)
	}
	fb, err := b.Get(ctx, key, t.footerPos, t.footerLen)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: read footer: %w", key, err)
	}
	if int64(len(fb)) != t.footerLen {
		return nil, fmt.Errorf("open segment %s: read footer: got %d of %d bytes: %w", key, len(fb), t.footerLen, ErrCorruptSegment)
	}
	chunks, err := parseFooter(fb, t)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", key, err)
	}
	return &Reader{version: t.version, flags: t.flags, size: size, chunks: chunks, bucket: b, key: key}, nil
}

// Parse reads the index of a segment held in memory. The Reader keeps obj
// and ReadChunk returns slices of it.
func Parse(obj []byte) (*Reader, error) {
	size := int64(len(obj))
	if size < headerSize+trailerSize {
		return nil, fmt.Errorf("parse segment: %d bytes is too short: %w", size, ErrNotSegment)
	}
	t, err := parseTrailer(obj[size-trailerSize:], size)
	if err != nil {
		return nil, fmt.Errorf("parse segment: %w", err)
	}
	if string(obj[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("parse segment: header magic %q: %w", obj[:len(Magic)], ErrNotSegment)
	}
	be := binary.BigEndian
	if v := int(be.Uint16(obj[8:])); v != t.version {
		return nil, fmt.Errorf("parse segment: header version %d, trailer version %d: %w", v, t.version, ErrCorruptSegment)
	}
	if f := be.Uint16(obj[10:]); f != t.flags {
		return nil, fmt.Errorf("parse segment: header flags %#04x, trailer flags %#04x: %w", f, t.flags, ErrCorruptSegment)
	}
	chunks, err := parseFooter(obj[t.footerPos:t.footerPos+t.footerLen], t)
	if err != nil {
		return nil, fmt.Errorf("parse segment: %w", err)
	}
	return &Reader{version: t.version, flags: t.flags, size: size, chunks: chunks, obj: obj}, nil
}

// parseTrailer checks, in order, magic, version, trailer CRC, flags and the
// footer's range within an object of size bytes.
func parseTrailer(b []byte, size int64) (trailer, error) {
	be := binary.BigEndian
	if string(b[trMagic:]) != Magic {
		return trailer{}, fmt.Errorf("trailer magic %q: %w", b[trMagic:], ErrNotSegment)
	}
	t := trailer{
		footerPos: int64(be.Uint64(b[trFooterPos:])),
		footerLen: int64(be.Uint32(b[trFooterLen:])),
		footerCRC: be.Uint32(b[trFooterCRC:]),
		flags:     be.Uint16(b[trFlags:]),
		version:   int(be.Uint16(b[trVersion:])),
	}
	if t.version != Version {
		return trailer{}, fmt.Errorf("version %d: %w", t.version, ErrUnsupportedVersion)
	}
	if want, got := be.Uint32(b[trTrailerCRC:]), Checksum(b[:trTrailerCRC]); want != got {
		return trailer{}, fmt.Errorf("trailer crc %08x, computed %08x: %w", want, got, ErrChecksum)
	}
	if unknown := t.flags & flagsIncompatible &^ flagsKnown; unknown != 0 {
		return trailer{}, fmt.Errorf("incompatible flags %#04x: %w", unknown, ErrUnsupportedVersion)
	}
	// The footer ends where the trailer starts; footerPos is unsigned on
	// disk, so a huge value shows up here as negative.
	if t.footerPos < headerSize || t.footerLen < 4 || t.footerPos+t.footerLen != size-trailerSize {
		return trailer{}, fmt.Errorf("footer at %d+%d in a %d-byte object: %w", t.footerPos, t.footerLen, size, ErrCorruptSegment)
	}
	return t, nil
}

// parseFooter decodes the footer. Every count and length is checked against
// the bytes actually present before it is used, so arbitrary input costs at
// most a small multiple of its own size.
func parseFooter(b []byte, t trailer) ([]ChunkInfo, error) {
	if got := Checksum(b); got != t.footerCRC {
		return nil, fmt.Errorf("footer crc %08x, computed %08x: %w", t.footerCRC, got, ErrChecksum)
	}
	be := binary.BigEndian
	n := be.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)/footerEntryMin) {
		return nil, fmt.Errorf("footer of %d bytes cannot hold %d chunks: %w", len(b)+4, n, ErrCorruptSegment)
	}
	chunks := make([]ChunkInfo, n)
	next := int64(headerSize) // chunks lie in [headerSize, footerPos), in order, without overlap
	for i := range chunks {
		if len(b) < 2 {
			return nil, fmt.Errorf("chunk %d: footer entry truncated: %w", i, ErrCorruptSegment)
		}
		el := int(be.Uint16(b))
		b = b[2:]
		if el < footerEntryFixed || el > len(b) {
			return nil, fmt.Errorf("chunk %d: footer entry of %d bytes, %d left: %w", i, el, len(b), ErrCorruptSegment)
		}
		e := b[:el]
		b = b[el:]
		nl := int(be.Uint16(e[16:]))
		if footerEntryFixed+nl > el {
			return nil, fmt.Errorf("chunk %d: topic name of %d bytes in a %d-byte entry: %w", i, nl, el, ErrCorruptSegment)
		}
		c := &chunks[i]
		copy(c.TopicID[:], e[:16])
		name := e[18 : 18+nl]
		if i > 0 && string(name) == chunks[i-1].Topic {
			c.Topic = chunks[i-1].Topic // partitions of a topic share one string
		} else {
			c.Topic = string(name)
		}
		e = e[18+nl:]
		c.Partition = int32(be.Uint32(e[0:]))
		pos, length := be.Uint64(e[4:]), be.Uint64(e[12:])
		c.BatchCount = int32(be.Uint32(e[20:]))
		c.OffsetCount = int64(be.Uint64(e[24:]))
		c.RecordCount = int64(be.Uint64(e[32:]))
		c.MinTimestamp = int64(be.Uint64(e[40:]))
		c.MaxTimestamp = int64(be.Uint64(e[48:]))
		c.BaseOffset = int64(be.Uint64(e[56:]))
		c.CRC = be.Uint32(e[64:])
		if pos < uint64(next) || length > uint64(t.footerPos) || pos > uint64(t.footerPos)-length {
			return nil, fmt.Errorf("chunk %d: range %d+%d outside [%d, %d): %w", i, pos, length, next, t.footerPos, ErrCorruptSegment)
		}
		c.Position, c.Length = int64(pos), int64(length)
		next = c.Position + c.Length
		if c.BatchCount < 0 || c.OffsetCount < 0 || c.RecordCount < 0 || c.BaseOffset < NoBaseOffset {
			return nil, fmt.Errorf("chunk %d: negative count or offset: %w", i, ErrCorruptSegment)
		}
	}
	return chunks, nil
}

// Version is the segment's major format version.
func (r *Reader) Version() int { return r.version }

// Size is the size of the segment object in bytes.
func (r *Reader) Size() int64 { return r.size }

// Chunks returns the segment's chunks in layout order. The slice is shared;
// do not modify it.
func (r *Reader) Chunks() []ChunkInfo { return r.chunks }

// ReadChunk returns the bytes of chunk i after checking its CRC. For a
// Reader from Parse the result aliases the object: copy it before patching
// base offsets.
func (r *Reader) ReadChunk(ctx context.Context, i int) ([]byte, error) {
	if i < 0 || i >= len(r.chunks) {
		return nil, fmt.Errorf("read chunk %d of %d: %w", i, len(r.chunks), ErrCorruptSegment)
	}
	c := &r.chunks[i]
	var b []byte
	if r.obj != nil {
		end := c.Position + c.Length
		b = r.obj[c.Position:end:end]
	} else {
		var err error
		b, err = r.bucket.Get(ctx, r.key, c.Position, c.Length)
		if err != nil {
			return nil, fmt.Errorf("read chunk %d of segment %s: %w", i, r.key, err)
		}
		if int64(len(b)) != c.Length {
			return nil, fmt.Errorf("read chunk %d of segment %s: got %d of %d bytes: %w", i, r.key, len(b), c.Length, ErrCorruptSegment)
		}
	}
	if err := VerifyChunk(b, *c); err != nil {
		return nil, fmt.Errorf("read chunk %d of segment %s: %w", i, r.key, err)
	}
	return b, nil
}

// VerifyChunk checks chunk bytes read by other means (a cache, a ranged read
// driven by the metastore index) against their footer entry.
func VerifyChunk(chunk []byte, c ChunkInfo) error {
	if int64(len(chunk)) != c.Length {
		return fmt.Errorf("chunk of %d bytes, expected %d: %w", len(chunk), c.Length, ErrCorruptSegment)
	}
	if got := Checksum(chunk); got != c.CRC {
		return fmt.Errorf("chunk crc %08x, computed %08x: %w", c.CRC, got, ErrChecksum)
	}
	return nil
}

// Dump writes a human-readable description of the segment's header and
// footer to w, one line per chunk, for tools and golden tests.
func (r *Reader) Dump(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "segment version=%d flags=%#04x size=%d chunks=%d\n", r.version, r.flags, r.size, len(r.chunks)); err != nil {
		return err
	}
	for i, c := range r.chunks {
		_, err := fmt.Fprintf(w, "chunk %d topic=%q id=%x partition=%d pos=%d len=%d batches=%d offsets=%d records=%d ts=[%d,%d] base=%d crc=%08x\n",
			i, c.Topic, c.TopicID, c.Partition, c.Position, c.Length, c.BatchCount, c.OffsetCount, c.RecordCount, c.MinTimestamp, c.MaxTimestamp, c.BaseOffset, c.CRC)
		if err != nil {
			return err
		}
	}
	return nil
}

// BatchIter walks the batches of a chunk:
//
//	it := segment.NewBatchIter(chunk)
//	for it.Next() {
//		use(it.Header(), it.Batch())
//	}
//	if err := it.Err(); err != nil { ... }
//
// It checks each batch's structure (magic, length) but not its CRC; the
// chunk CRC already covers the bytes.
type BatchIter struct {
	rest  []byte
	batch []byte
	h     BatchHeader
	err   error
}

// NewBatchIter returns an iterator over the batches of chunk.
func NewBatchIter(chunk []byte) *BatchIter { return &BatchIter{rest: chunk} }

// Next advances to the next batch and reports whether there is one. It
// returns false at the end of the chunk or at the first malformed batch.
func (it *BatchIter) Next() bool {
	if it.err != nil || len(it.rest) == 0 {
		it.batch = nil
		return false
	}
	it.batch, it.rest, it.h, it.err = NextBatch(it.rest)
	return it.err == nil
}

// Batch is the current batch, aliasing the chunk.
func (it *BatchIter) Batch() []byte { return it.batch }

// Header is the current batch's header.
func (it *BatchIter) Header() BatchHeader { return it.h }

// Err is the error that stopped the iteration, or nil at a clean end.
func (it *BatchIter) Err() error { return it.err }
