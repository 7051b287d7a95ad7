package segment

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
)

// TopicRef names the partition a batch belongs to.
type TopicRef struct {
	ID        [16]byte
	Name      string
	Partition int32
}

// ChunkInfo describes one chunk: the contiguous run of one partition's
// batches inside a segment object, as recorded in the footer.
type ChunkInfo struct {
	TopicID   [16]byte
	Topic     string
	Partition int32
	// Position and Length are the chunk's byte range in the object.
	Position, Length int64
	BatchCount       int32
	// OffsetCount is the sum of the batches' LastOffsetDelta+1: how far the
	// partition's offsets advance over this chunk.
	OffsetCount int64
	RecordCount int64
	// MinTimestamp is the smallest batch FirstTimestamp and MaxTimestamp the
	// largest batch MaxTimestamp, in milliseconds.
	MinTimestamp, MaxTimestamp int64
	// BaseOffset is the offset of the chunk's first batch, or NoBaseOffset
	// (-1) in write-path segments, whose offsets are assigned at commit and
	// kept in the metastore index.
	BaseOffset int64
	// CRC is the CRC-32C of the chunk's bytes as stored.
	CRC uint32
}

type partKey struct {
	id        [16]byte
	partition int32
}

// partBuf gathers one partition's batches until Finish.
type partBuf struct {
	tp                         TopicRef
	batches                    [][]byte
	bytes                      int64
	offsets, records           int64
	minTimestamp, maxTimestamp int64
}

// Writer builds one segment object from batches of many partitions. It
// keeps references to the appended batches and copies each of them once,
// into the object, when Finish lays the partitions out; so the caller must
// leave a batch's bytes untouched from Append until Finish returns.
//
// A Writer is reused across flushes with Reset, which keeps its internal
// buffers. It is not safe for concurrent use.
type Writer struct {
	index map[partKey]int
	parts []partBuf // parts[:n] are in use; the rest keep capacity for reuse
	n     int
	order []int

	last    partKey // partition of the previous Append, to skip the map lookup
	lastIdx int

	dataBytes   int64
	footerBytes int64
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	w := &Writer{index: make(map[partKey]int)}
	w.Reset()
	return w
}

// Reset empties the writer for the next segment, keeping its buffers. It
// drops the references to the batches appended so far.
func (w *Writer) Reset() {
	for i := range w.parts[:w.n] {
		p := &w.parts[i]
		clear(p.batches)
		p.batches = p.batches[:0]
	}
	clear(w.index)
	w.n = 0
	w.lastIdx = -1
	w.dataBytes = 0
	w.footerBytes = 4 // chunk count
}

// Append adds one batch of partition tp, already validated, with its parsed
// header. Batches of a partition keep their append order; their base offset
// is stored as it is (a placeholder on the write path). The writer retains
// batch until Finish. tp.Name must not exceed MaxTopicNameLen bytes.
func (w *Writer) Append(tp TopicRef, batch []byte, h BatchHeader) {
	k := partKey{tp.ID, tp.Partition}
	i := w.lastIdx
	if i < 0 || k != w.last {
		var ok bool
		i, ok = w.index[k]
		if !ok {
			i = w.newPart(tp)
			w.index[k] = i
		}
		w.last, w.lastIdx = k, i
	}
	p := &w.parts[i]
	p.batches = append(p.batches, batch)
	p.bytes += int64(len(batch))
	p.offsets += h.OffsetCount()
	p.records += int64(h.NumRecords)
	if len(p.batches) == 1 || h.FirstTimestamp < p.minTimestamp {
		p.minTimestamp = h.FirstTimestamp
	}
	if len(p.batches) == 1 || h.MaxTimestamp > p.maxTimestamp {
		p.maxTimestamp = h.MaxTimestamp
	}
	w.dataBytes += int64(len(batch))
}

func (w *Writer) newPart(tp TopicRef) int {
	if len(tp.Name) > MaxTopicNameLen {
		// Kafka topic names have at most 249 bytes; the agent validates them
		// long before a batch gets here.
		panic("segment: topic name longer than MaxTopicNameLen")
	}
	if w.n == len(w.parts) {
		w.parts = append(w.parts, partBuf{})
	}
	p := &w.parts[w.n]
	*p = partBuf{tp: tp, batches: p.batches[:0]}
	w.n++
	w.footerBytes += footerEntryMin + int64(len(tp.Name))
	return w.n - 1
}

// Size is the size in bytes the object would have if finished now.
func (w *Writer) Size() int {
	return int(headerSize + w.dataBytes + w.footerBytes + trailerSize)
}

// Finish lays out the object: header, one chunk per partition ordered by
// (topic id, partition), footer and trailer. It returns a newly allocated
// object and its chunks in layout order; both belong to the caller, so the
// writer can be Reset and refilled while the object is uploaded.
func (w *Writer) Finish() (obj []byte, chunks []ChunkInfo) {
	return w.AppendObject(nil)
}

// AppendObject is Finish writing into dst[:0], growing it if needed, so
// callers can pool object buffers.
func (w *Writer) AppendObject(dst []byte) (obj []byte, chunks []ChunkInfo) {
	w.order = w.order[:0]
	for i := range w.n {
		w.order = append(w.order, i)
	}
	slices.SortFunc(w.order, func(a, b int) int {
		pa, pb := &w.parts[a].tp, &w.parts[b].tp
		if c := bytes.Compare(pa.ID[:], pb.ID[:]); c != 0 {
			return c
		}
		return cmp.Compare(pa.Partition, pb.Partition)
	})

	size := w.Size()
	obj = slices.Grow(dst[:0], size)
	be := binary.BigEndian

	obj = append(obj, Magic...)
	obj = be.AppendUint16(obj, Version)
	obj = be.AppendUint16(obj, 0) // flags
	obj = be.AppendUint32(obj, 0) // reserved

	chunks = make([]ChunkInfo, 0, w.n)
	for _, i := range w.order {
		p := &w.parts[i]
		pos := len(obj)
		for _, b := range p.batches {
			obj = append(obj, b...)
		}
		chunks = append(chunks, ChunkInfo{
			TopicID:      p.tp.ID,
			Topic:        p.tp.Name,
			Partition:    p.tp.Partition,
			Position:     int64(pos),
			Length:       int64(len(obj) - pos),
			BatchCount:   int32(len(p.batches)),
			OffsetCount:  p.offsets,
			RecordCount:  p.records,
			MinTimestamp: p.minTimestamp,
			MaxTimestamp: p.maxTimestamp,
			BaseOffset:   NoBaseOffset,
			CRC:          Checksum(obj[pos:]),
		})
	}

	footerPos := len(obj)
	obj = appendFooter(obj, chunks)
	footerLen := len(obj) - footerPos
	obj = appendTrailer(obj, int64(footerPos), footerLen, Checksum(obj[footerPos:]), 0)
	return obj, chunks
}

func appendFooter(dst []byte, chunks []ChunkInfo) []byte {
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(len(chunks)))
	for i := range chunks {
		c := &chunks[i]
		dst = be.AppendUint16(dst, uint16(footerEntryFixed+len(c.Topic)))
		dst = append(dst, c.TopicID[:]...)
		dst = be.AppendUint16(dst, uint16(len(c.Topic)))
		dst = append(dst, c.Topic...)
		dst = be.AppendUint32(dst, uint32(c.Partition))
		dst = be.AppendUint64(dst, uint64(c.Position))
		dst = be.AppendUint64(dst, uint64(c.Length))
		dst = be.AppendUint32(dst, uint32(c.BatchCount))
		dst = be.AppendUint64(dst, uint64(c.OffsetCount))
		dst = be.AppendUint64(dst, uint64(c.RecordCount))
		dst = be.AppendUint64(dst, uint64(c.MinTimestamp))
		dst = be.AppendUint64(dst, uint64(c.MaxTimestamp))
		dst = be.AppendUint64(dst, uint64(c.BaseOffset))
		dst = be.AppendUint32(dst, c.CRC)
	}
	return dst
}

func appendTrailer(dst []byte, footerPos int64, footerLen int, footerCRC uint32, flags uint16) []byte {
	be := binary.BigEndian
	start := len(dst)
	dst = be.AppendUint64(dst, uint64(footerPos))
	dst = be.AppendUint32(dst, uint32(footerLen))
	dst = be.AppendUint32(dst, footerCRC)
	dst = be.AppendUint16(dst, flags)
	dst = be.AppendUint32(dst, Checksum(dst[start:]))
	dst = be.AppendUint16(dst, Version)
	return append(dst, Magic...)
}
