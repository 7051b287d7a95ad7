package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Produce frames are decoded as they are read, not read whole and then
// decoded: every partition's record set gets an allocation of its own.
//
// Why: a decoded request aliases the frame it was read into, so one record
// set kept by the write buffer keeps the whole frame alive. Producers under
// backpressure send frames of tens of MiB holding batches of hundreds of
// partitions; the write pipeline copies batches into segment objects a
// flush (flush.bytes) at a time, and each frame stayed alive beside the
// objects that already held its batches until its last batch was copied:
// the same bytes twice, past the budget that counts them once. With a
// record set per allocation, a batch's memory goes when its batch is
// copied, and nothing else of the frame outlives the handler.
//
// The decoder accepts what parseRequest accepts for a Produce frame
// (scanProduce's walk, then kmsg's decode) and yields the same request;
// FuzzReadProduce holds the two paths to that. The one difference: the
// bound on what topics and partitions decode into counts slice growth, so
// it refuses some bodies of near-empty topics a little earlier.

// The Produce versions readProduce knows (those scanProduce walks); others
// are read whole and left to parseRequest.
const (
	minStreamedProduceVersion = 3
	maxStreamedProduceVersion = 13
)

// produceReader reads Kafka primitives from the bytes of one frame still
// on the connection.
type produceReader struct {
	r        *bufio.Reader
	left     int64 // bytes of the frame not read yet
	flexible bool
}

var errFrameShort = errors.New("frame ends inside the request")

func (p *produceReader) take(n int64) ([]byte, error) {
	if n < 0 || n > p.left {
		return nil, protocolErrorf("produce: %v (%d bytes claimed, %d left)", errFrameShort, n, p.left)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(p.r, b); err != nil {
		return nil, readErr(err)
	}
	p.left -= n
	return b, nil
}

func (p *produceReader) skip(n int64) error {
	if n < 0 || n > p.left {
		return protocolErrorf("produce: %v (%d bytes claimed, %d left)", errFrameShort, n, p.left)
	}
	if _, err := p.r.Discard(int(n)); err != nil {
		return readErr(err)
	}
	p.left -= n
	return nil
}

// fixed reads n ≤ 16 bytes into a small buffer without allocating.
func (p *produceReader) fixed(n int) ([16]byte, error) {
	var b [16]byte
	if int64(n) > p.left {
		return b, protocolErrorf("produce: %v", errFrameShort)
	}
	if _, err := io.ReadFull(p.r, b[:n]); err != nil {
		return b, readErr(err)
	}
	p.left -= int64(n)
	return b, nil
}

func (p *produceReader) int16() (int16, error) {
	b, err := p.fixed(2)
	return int16(binary.BigEndian.Uint16(b[:])), err
}

func (p *produceReader) int32() (int32, error) {
	b, err := p.fixed(4)
	return int32(binary.BigEndian.Uint32(b[:])), err
}

// uvarint reads an unsigned varint (binary.Uvarint's encoding) of at most
// 2^31, as scanProduce does.
func (p *produceReader) uvarint() (int64, error) {
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := p.fixed(1)
		if err != nil {
			return 0, err
		}
		if b[0] < 0x80 {
			if i == binary.MaxVarintLen64-1 && b[0] > 1 {
				break // overflows 64 bits
			}
			v |= uint64(b[0]) << (7 * i)
			if v > 1<<31 {
				break
			}
			return int64(v), nil
		}
		v |= uint64(b[0]&0x7f) << (7 * i)
	}
	return 0, protocolErrorf("produce: invalid unsigned varint")
}

// length reads a length prefix: int16 or int32 (wide) when not flexible,
// else a compact length (uvarint, plus one); negative is null.
func (p *produceReader) length(wide bool) (int64, error) {
	switch {
	case p.flexible:
		n, err := p.uvarint()
		return n - 1, err
	case wide:
		n, err := p.int32()
		return int64(n), err
	default:
		n, err := p.int16()
		return int64(n), err
	}
}

func (p *produceReader) nullableString() (*string, error) {
	n, err := p.length(false)
	if err != nil || n < 0 {
		return nil, err
	}
	b, err := p.take(n)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

func (p *produceReader) string() (string, error) {
	n, err := p.length(false)
	if err != nil {
		return "", err
	}
	if n < 0 {
		return "", protocolErrorf("produce: null or negative string length")
	}
	b, err := p.take(n)
	return string(b), err
}

// arrayLen reads an array length; a null array has no elements. Each
// element takes at least a byte, so a count beyond the bytes left is a lie.
func (p *produceReader) arrayLen() (int64, error) {
	n, err := p.length(true)
	if err != nil {
		return 0, err
	}
	if n > p.left {
		return 0, protocolErrorf("produce: array of %d elements claimed with %d bytes left", n, p.left)
	}
	return max(n, 0), nil
}

func (p *produceReader) tags() error {
	if !p.flexible {
		return nil
	}
	n, err := p.uvarint()
	for i := int64(0); i < n && err == nil; i++ {
		if _, err = p.uvarint(); err != nil { // the tag
			break
		}
		var size int64
		if size, err = p.uvarint(); err == nil {
			err = p.skip(size)
		}
	}
	return err
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF // EOF inside a frame is a truncated frame
	}
	return fmt.Errorf("read produce frame: %w", err)
}

// readProduce reads and decodes a Produce frame of size bytes (the size
// prefix already read) of a streamed version.
// Like parseRequest, it bounds what the decoded request may cost
// (checkProduceDecode's ratio), refuses bytes after the request, and
// allocates no more than the frame holds.
func readProduce(br *bufio.Reader, size int32) (requestHeader, *kmsg.ProduceRequest, error) {
	var h requestHeader
	p := &produceReader{r: br, left: int64(size)}
	b, err := p.fixed(8)
	if err != nil {
		return h, nil, err
	}
	h.key = int16(binary.BigEndian.Uint16(b[0:]))
	h.version = int16(binary.BigEndian.Uint16(b[2:]))
	h.correlationID = int32(binary.BigEndian.Uint32(b[4:]))
	if h.key != int16(kmsg.Produce) || h.version < minStreamedProduceVersion || h.version > maxStreamedProduceVersion {
		return h, nil, fmt.Errorf("readProduce: %s v%d is not streamed", kmsg.NameForKey(h.key), h.version)
	}
	cl, err := p.int16()
	switch {
	case err != nil:
		return h, nil, err
	case cl < -1:
		return h, nil, protocolErrorf("invalid client id length %d", cl)
	case cl >= 0:
		id, err := p.take(int64(cl))
		if err != nil {
			return h, nil, err
		}
		s := string(id)
		h.clientID = &s
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(h.version)
	p.flexible = req.IsFlexible()
	if err := p.tags(); err != nil { // the header's
		return h, nil, err
	}
	body := p.left
	// What the decoded topics and partitions may cost: parseRequest's
	// bound, here on what growing their slices allocates in all, since the
	// counts are not known before the bytes arrive.
	d := decodeBudget{allowed: produceDecodeRatio*body + 4096, version: h.version, body: body}
	if req.TransactionID, err = p.nullableString(); err != nil { // v3+
		return h, nil, err
	}
	if req.Acks, err = p.int16(); err != nil {
		return h, nil, err
	}
	if req.TimeoutMillis, err = p.int32(); err != nil {
		return h, nil, err
	}
	nt, err := p.arrayLen()
	if err != nil {
		return h, nil, err
	}
	for i := int64(0); i < nt; i++ {
		t := kmsg.NewProduceRequestTopic()
		if h.version >= 13 {
			id, err := p.fixed(16)
			if err != nil {
				return h, nil, err
			}
			t.TopicID = id
		} else if t.Topic, err = p.string(); err != nil {
			return h, nil, err
		}
		np, err := p.arrayLen()
		if err != nil {
			return h, nil, err
		}
		for j := int64(0); j < np; j++ {
			part := kmsg.NewProduceRequestTopicPartition()
			if part.Partition, err = p.int32(); err != nil {
				return h, nil, err
			}
			n, err := p.length(true)
			if err != nil {
				return h, nil, err
			}
			if n >= 0 {
				if part.Records, err = p.take(n); err != nil {
					return h, nil, err
				}
			}
			if err := p.tags(); err != nil {
				return h, nil, err
			}
			if t.Partitions, err = appendCounted(&d, t.Partitions, part, producePartitionSize); err != nil {
				return h, nil, err
			}
		}
		if err := p.tags(); err != nil {
			return h, nil, err
		}
		if req.Topics, err = appendCounted(&d, req.Topics, t, produceTopicSize); err != nil {
			return h, nil, err
		}
	}
	if err := p.tags(); err != nil {
		return h, nil, err
	}
	if p.left != 0 {
		return h, nil, protocolErrorf("produce v%d: %d bytes after the request", h.version, p.left)
	}
	return h, req, nil
}

// tooCostly marks the refusal of a request that would decode into more
// than its bound. Counting slice growth, readProduce refuses some bodies
// of near-empty topics that parseRequest's exact count would let through.
const tooCostly = "decodes into more than"

// decodeBudget counts what decoding one Produce request allocates for its
// topics and partitions.
type decodeBudget struct {
	allowed, spent int64
	version        int16
	body           int64
}

// appendCounted appends v to s, growing s by doubling and counting each
// new backing array (elem bytes per element) against d.
func appendCounted[T any](d *decodeBudget, s []T, v T, elem int64) ([]T, error) {
	if len(s) == cap(s) {
		n := max(2*cap(s), 4)
		if d.spent += int64(n) * elem; d.spent > d.allowed {
			return nil, protocolErrorf("produce v%d body of %d bytes %s %d bytes of topics and partitions",
				d.version, d.body, tooCostly, d.allowed)
		}
		grown := make([]T, len(s), n)
		copy(grown, s)
		s = grown
	}
	return append(s, v), nil
}
