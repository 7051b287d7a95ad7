package segment

import "errors"

// Layout constants of segment format v1. FORMAT.md is the normative
// description; keep the two in step.
const (
	// Magic opens the header and closes the trailer of every segment.
	Magic = "SILTSEG\x00"
	// Version is the major format version this package writes and the only
	// one it reads.
	Version = 1

	headerSize  = 16
	trailerSize = 32

	// Trailer field offsets, relative to the trailer start.
	trFooterPos  = 0
	trFooterLen  = 8
	trFooterCRC  = 12
	trFlags      = 16
	trTrailerCRC = 18
	trVersion    = 22
	trMagic      = 24

	// footerEntryFixed is the size of a footer entry without its length
	// prefix and topic name.
	footerEntryFixed = 16 + 2 + 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 8 + 4
	// footerEntryMin is the smallest footer entry with its length prefix.
	footerEntryMin = 2 + footerEntryFixed

	// flagsIncompatible are the flag bits a reader must understand to read
	// the segment; v1 defines none. The high byte holds compatible flags,
	// which readers ignore when they do not know them.
	flagsIncompatible = 0x00ff
	flagsKnown        = 0

	// MaxTopicNameLen is the longest topic name a footer entry can hold.
	MaxTopicNameLen = 0xffff - footerEntryFixed

	// NoBaseOffset is ChunkInfo.BaseOffset of write-path segments, whose
	// offsets live in the metastore index.
	NoBaseOffset = -1
)

var (
	// ErrNotSegment means the object does not carry the segment magic.
	ErrNotSegment = errors.New("not a silt segment")
	// ErrUnsupportedVersion means the segment has a major version or an
	// incompatible flag this reader does not know.
	ErrUnsupportedVersion = errors.New("unsupported segment version")
	// ErrChecksum means a CRC-32C in the segment does not match its bytes.
	ErrChecksum = errors.New("segment checksum mismatch")
	// ErrCorruptSegment means the segment's structure is inconsistent:
	// out-of-range positions, overlapping chunks, bad lengths.
	ErrCorruptSegment = errors.New("corrupt segment")
)
