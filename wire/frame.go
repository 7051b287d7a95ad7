package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime/debug"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request framing: a 4-byte big-endian size, then the request header (api key
// int16, api version int16, correlation id int32, nullable client id string
// with an int16 length) and, for flexible versions (header v2), tagged fields.
// Responses carry the correlation id and, when flexible, an empty tagged-field
// byte — except ApiVersions responses, which always use response header v0 so
// that a client can parse them before it knows which versions we speak.

// minRequestHeaderLen is api key, api version, correlation id and the client
// id length: the shortest frame that can be a request.
const minRequestHeaderLen = 2 + 2 + 4 + 2

// frameChunk caps the first allocation for a frame body. The buffer then
// doubles as bytes actually arrive, so a client that claims a large size and
// sends little costs us little.
const frameChunk = 1 << 20

// protocolError is a client's violation of the protocol: the connection is
// closed and the reason logged.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

func protocolErrorf(format string, args ...any) error {
	return &protocolError{msg: fmt.Sprintf(format, args...)}
}

// readFrameSize reads a frame's size prefix and checks it against maxBytes.
// n is how many bytes of the prefix were read, so that a caller can tell a
// timeout between frames (n == 0) from a stall inside one.
func readFrameSize(r io.Reader, maxBytes int32) (size int32, n int, err error) {
	var b [4]byte
	n, err = io.ReadFull(r, b[:])
	if err != nil {
		return 0, n, err
	}
	size = int32(binary.BigEndian.Uint32(b[:]))
	switch {
	case size < 0:
		return 0, n, protocolErrorf("negative frame size %d", size)
	case size < minRequestHeaderLen:
		return 0, n, protocolErrorf("frame size %d is shorter than a request header", size)
	case size > maxBytes:
		return 0, n, protocolErrorf("frame size %d exceeds MaxRequestBytes %d", size, maxBytes)
	}
	return size, n, nil
}

// readFrameBody reads size bytes. It never allocates more than twice what has
// arrived (and at most frameChunk up front). The buffer is never reused: a
// decoded request aliases it.
func readFrameBody(r io.Reader, size int32) ([]byte, error) {
	n := int(size)
	buf := make([]byte, min(n, frameChunk))
	read := 0
	for {
		m, err := io.ReadFull(r, buf[read:])
		read += m
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // EOF inside a frame is a truncated frame
			}
			return nil, fmt.Errorf("read frame of %d bytes after %d: %w", n, read, err)
		}
		if read == n {
			return buf, nil
		}
		grown := make([]byte, min(2*len(buf), n))
		copy(grown, buf)
		buf = grown
	}
}

// requestHeader is the decoded header of one request.
type requestHeader struct {
	key           int16
	version       int16
	correlationID int32
	clientID      *string // nil when the client sent a null client id
}

// request is one decoded frame.
type request struct {
	hdr requestHeader
	// req is nil for an ApiVersions request of a version we do not speak:
	// per KIP-511 its body is not parsed and it is answered with a v0
	// UNSUPPORTED_VERSION response listing our versions.
	req     kmsg.Request
	handler Handler // nil for ApiVersions
}

// parseRequest decodes a frame (without its size prefix) against reg.
func parseRequest(reg *Registry, frame []byte) (request, error) {
	var r request
	if len(frame) < minRequestHeaderLen {
		return r, protocolErrorf("frame of %d bytes is shorter than a request header", len(frame))
	}
	h := &r.hdr
	h.key = int16(binary.BigEndian.Uint16(frame[0:]))
	h.version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.correlationID = int32(binary.BigEndian.Uint32(frame[4:]))
	rest := frame[8:]

	e, ok := reg.lookup(h.key)
	if !ok {
		return r, protocolErrorf("unknown or unsupported API key %d (%s)", h.key, kmsg.NameForKey(h.key))
	}
	if h.version < e.min || h.version > e.max {
		if h.key == apiVersionsKey {
			// KIP-511: answer so the client can retry with a version we
			// speak. Only the correlation id matters; a header we cannot
			// parse (a future header version) is tolerated.
			h.clientID, _, _ = readClientID(rest)
			return r, nil
		}
		return r, protocolErrorf("%s version %d is outside the supported range [%d, %d]",
			kmsg.NameForKey(h.key), h.version, e.min, e.max)
	}
	r.handler = e.handler

	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	var err error
	h.clientID, rest, err = readClientID(rest)
	if err != nil {
		return r, err
	}
	if req.IsFlexible() {
		if rest, err = skipTags(rest); err != nil {
			return r, err
		}
	}
	if h.key == int16(kmsg.Produce) {
		// Produce frames may be as large as MaxRequestBytes: check what
		// they would decode into before kmsg allocates it (budget.go).
		if err := checkProduceDecode(h.version, rest); err != nil {
			return r, err
		}
	}
	if err := decodeBody(req, rest); err != nil {
		return r, err
	}
	r.req = req
	return r, nil
}

// readClientID reads the header's nullable client id string.
func readClientID(b []byte) (*string, []byte, error) {
	if len(b) < 2 {
		return nil, nil, protocolErrorf("truncated client id")
	}
	l := int16(binary.BigEndian.Uint16(b))
	b = b[2:]
	switch {
	case l == -1:
		return nil, b, nil
	case l < 0:
		return nil, nil, protocolErrorf("invalid client id length %d", l)
	case int(l) > len(b):
		return nil, nil, protocolErrorf("client id length %d exceeds the %d bytes left", l, len(b))
	}
	s := string(b[:l])
	return &s, b[l:], nil
}

// skipTags skips a tagged-field section (KIP-482). The header defines no
// tags that we use, so they are all unknown and ignored.
func skipTags(b []byte) ([]byte, error) {
	n, b, err := readUvarint32(b)
	if err != nil {
		return nil, fmt.Errorf("tagged field count: %w", err)
	}
	for i := uint32(0); i < n; i++ {
		var size uint32
		if _, b, err = readUvarint32(b); err != nil {
			return nil, fmt.Errorf("tagged field tag: %w", err)
		}
		if size, b, err = readUvarint32(b); err != nil {
			return nil, fmt.Errorf("tagged field size: %w", err)
		}
		if uint64(size) > uint64(len(b)) {
			return nil, protocolErrorf("tagged field size %d exceeds the %d bytes left", size, len(b))
		}
		b = b[size:]
	}
	return b, nil
}

func readUvarint32(b []byte) (uint32, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 || v > math.MaxUint32 {
		return 0, nil, protocolErrorf("invalid unsigned varint")
	}
	return uint32(v), b[n:], nil
}

// errDecodePanic marks a request that panicked kmsg: a bug to fix there, but
// only a closed connection here.
var errDecodePanic = errors.New("panic decoding")

// decodeBody decodes a request body into req, whose version is set. kmsg
// bounds every length by the bytes present; the recover is defence in depth
// so that no client input can panic the process.
func decodeBody(req kmsg.Request, body []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w %s v%d: %v\n%s",
				errDecodePanic, kmsg.NameForKey(req.Key()), req.GetVersion(), p, debug.Stack())
		}
	}()
	if err := req.ReadFrom(body); err != nil {
		return protocolErrorf("decode %s v%d body of %d bytes: %v",
			kmsg.NameForKey(req.Key()), req.GetVersion(), len(body), err)
	}
	return nil
}

// appendResponse appends resp as a framed response to dst. resp's version
// must already be set.
func appendResponse(dst []byte, correlationID int32, resp kmsg.Response) []byte {
	if hint := responseSizeHint(resp); cap(dst)-len(dst) < hint {
		// Not slices.Grow: under the race detector it allocates twice.
		dst = append(make([]byte, 0, len(dst)+hint), dst...)
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0) // size, patched below
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		dst = append(dst, 0) // response header v1: no tagged fields
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// responseSizeHint is, for a response that carries record data (Fetch,
// ShareFetch), a generous estimate of its encoded size, and 0 for any
// other. appendResponse grows its buffer to it at once: built by append
// alone, a Fetch response of tens of MiB would be copied and its buffer
// reallocated some twenty times while it doubles, which costs more than
// reading the records from the cache did. An estimate that falls short
// costs one more growth, never a wrong frame.
func responseSizeHint(resp kmsg.Response) int {
	const (
		header    = 128 // frame, header and the response's own fields
		topic     = 64  // a topic's fields, its name aside
		partition = 128 // a partition's fixed and tagged fields
		perEntry  = 32  // an aborted transaction or acquired record range
		node      = 64  // a node endpoint (KIP-951), its strings aside
	)
	n := 0
	switch r := resp.(type) {
	case *kmsg.FetchResponse:
		n = header + len(r.Brokers)*node
		for _, b := range r.Brokers {
			n += len(b.Host) + strLen(b.Rack)
		}
		for i := range r.Topics {
			t := &r.Topics[i]
			n += topic + len(t.Topic)
			for j := range t.Partitions {
				p := &t.Partitions[j]
				n += partition + len(p.AbortedTransactions)*perEntry + len(p.RecordBatches)
			}
		}
	case *kmsg.ShareFetchResponse:
		n = header + strLen(r.ErrorMessage) + len(r.NodeEndpoints)*node
		for _, ne := range r.NodeEndpoints {
			n += len(ne.Host) + strLen(ne.Rack)
		}
		for i := range r.Topics {
			t := &r.Topics[i]
			n += topic
			for j := range t.Partitions {
				p := &t.Partitions[j]
				n += partition + strLen(p.ErrorMessage) + strLen(p.AcknowledgeErrorMessage) +
					len(p.AcquiredRecords)*perEntry + len(p.Records)
			}
		}
	}
	return n
}

func strLen(s *string) int {
	if s == nil {
		return 0
	}
	return len(*s)
}
