package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// scanProduce walks a Produce request body (after the request header) the
// way kmsg will decode it, without allocating, and counts its topics and
// partitions. Every claimed array must be followed by that many elements,
// so the counts are what kmsg will really allocate.
func scanProduce(version int16, b []byte) (topics, partitions int64, err error) {
	if version < 0 || version > 13 {
		return 0, 0, fmt.Errorf("version %d is not scanned", version)
	}
	s := scanner{b: b, flexible: version >= 9}
	if version >= 3 {
		s.nullableString() // transactional id
	}
	s.skip(2 + 4) // acks, timeout
	nt := s.arrayLen()
	for i := int64(0); i < nt && s.err == nil; i++ {
		if version >= 13 {
			s.skip(16) // topic id
		} else {
			s.string() // topic name
		}
		np := s.arrayLen()
		for j := int64(0); j < np && s.err == nil; j++ {
			s.skip(4) // partition
			s.nullableBytes()
			s.tags()
		}
		partitions += np
		s.tags()
	}
	s.tags()
	if s.err == nil && len(s.b) != 0 {
		s.err = fmt.Errorf("%d bytes after the request", len(s.b))
	}
	return nt, partitions, s.err
}

// scanner reads Kafka primitives, remembering the first error.
type scanner struct {
	b        []byte
	flexible bool
	err      error
}

var errScanTruncated = errors.New("truncated")

func (s *scanner) skip(n int64) {
	if s.err != nil {
		return
	}
	if n < 0 || n > int64(len(s.b)) {
		s.err = errScanTruncated
		s.b = nil
		return
	}
	s.b = s.b[n:]
}

func (s *scanner) int16() int64 {
	if s.err != nil || len(s.b) < 2 {
		s.skip(2)
		return 0
	}
	v := int16(binary.BigEndian.Uint16(s.b))
	s.b = s.b[2:]
	return int64(v)
}

func (s *scanner) int32() int64 {
	if s.err != nil || len(s.b) < 4 {
		s.skip(4)
		return 0
	}
	v := int32(binary.BigEndian.Uint32(s.b))
	s.b = s.b[4:]
	return int64(v)
}

func (s *scanner) uvarint() int64 {
	if s.err != nil {
		return 0
	}
	v, n := binary.Uvarint(s.b)
	if n <= 0 || v > 1<<31 {
		s.err = errors.New("invalid unsigned varint")
		s.b = nil
		return 0
	}
	s.b = s.b[n:]
	return int64(v)
}

// length reads a length prefix: int16 or int32 when not flexible, else a
// compact (uvarint, plus one) length; -1 is null.
func (s *scanner) length(wide bool) int64 {
	switch {
	case s.flexible:
		return s.uvarint() - 1
	case wide:
		return s.int32()
	default:
		return s.int16()
	}
}

func (s *scanner) nullableString() {
	if n := s.length(false); n > 0 {
		s.skip(n)
	}
}

func (s *scanner) string() {
	n := s.length(false)
	if n < 0 && s.err == nil {
		s.err = errors.New("null or negative string length")
		s.b = nil
	}
	s.skip(max(n, 0))
}

func (s *scanner) nullableBytes() {
	if n := s.length(true); n > 0 {
		s.skip(n)
	}
}

// arrayLen reads an array length and checks that the bytes left can hold
// that many elements of at least one byte each.
func (s *scanner) arrayLen() int64 {
	n := s.length(true)
	if s.err != nil {
		return 0
	}
	if n < 0 { // a null array: kmsg allocates nothing
		return 0
	}
	if n > int64(len(s.b)) {
		s.err = fmt.Errorf("array of %d elements claimed with %d bytes left", n, len(s.b))
		s.b = nil
		return 0
	}
	return n
}

// tags skips a tagged-field section (flexible versions only).
func (s *scanner) tags() {
	if !s.flexible {
		return
	}
	n := s.uvarint()
	for i := int64(0); i < n && s.err == nil; i++ {
		s.uvarint() // tag
		s.skip(s.uvarint())
	}
}
