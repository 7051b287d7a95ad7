package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// memConn is an in-memory net.Conn whose input is a fixed byte stream and
// whose output is discarded: the fuzzer's client.
type memConn struct {
	r      *bytes.Reader
	mu     sync.Mutex
	closed bool
}

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "mem:9092" }

func (c *memConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return len(p), nil
}

func (c *memConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func (c *memConn) LocalAddr() net.Addr              { return memAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return memAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// fuzzSeeds are well-formed request streams to start from.
func fuzzSeeds() [][]byte {
	meta := kmsg.NewPtrMetadataRequest()
	topic := "t"
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = &topic
	meta.Topics = append(meta.Topics, mt)
	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "kgo", "1.0"
	ct := kmsg.NewPtrCreateTopicsRequest()
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic = "a"
	ct.Topics = append(ct.Topics, ctt)
	prod := kmsg.NewPtrProduceRequest()
	prod.Acks = 0
	return [][]byte{
		encodeRequest(av, 3, 0, strp("c")),
		append(encodeRequest(av, 127, 1, nil), encodeRequest(av, 4, 2, nil)...),
		encodeRequest(meta, 12, 3, strp("c")),
		encodeRequest(meta, 1, 3, nil),
		append(encodeRequest(ct, 4, 4, nil), encodeRequest(heartbeat("", 1), 4, 5, nil)...),
		append(encodeRequest(heartbeat("delay-0", 1), 3, 6, nil), encodeRequest(prod, 9, 7, nil)...),
		encodeRequest(kmsg.NewPtrSyncGroupRequest(), 5, 8, nil),
		encodeRequest(heartbeat("close", 1), 4, 9, nil),
		encodeRequest(heartbeat("zero", 1), 4, 9, nil),
		{0, 0, 0, 10, 0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff},
	}
}

// FuzzServeConn feeds arbitrary bytes to a connection: no panic may escape
// and the connection must finish.
func FuzzServeConn(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		h := &testHandlers{release: make(chan struct{})}
		close(h.release)
		s, err := NewServer(Config{MaxRequestBytes: 1 << 16, MaxInflight: 4}, newTestRegistry(h))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		c := s.startConn(&memConn{r: bytes.NewReader(input)}, defaultListener)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Fatal("connection did not finish")
		}
	})
}

// allKeysRegistry registers every request kmsg knows at every version, so
// that FuzzDecodeRequest reaches every decoder.
func allKeysRegistry() *Registry {
	reg := NewRegistry()
	noop := func(_ context.Context, _ *Conn, _ kmsg.Request) Reply { return NoResponse() }
	for key := int16(0); key < 1000; key++ {
		if req := kmsg.RequestForKey(key); req != nil && key != apiVersionsKey {
			reg.Register(key, 0, req.MaxVersion(), noop)
		}
	}
	reg.freeze()
	return reg
}

// FuzzDecodeRequest runs (key, version, rest of header and body) through
// parseRequest, the server's decode path. A decode may fail, but must not
// panic, and what decodes must re-encode.
func FuzzDecodeRequest(f *testing.F) {
	reg := allKeysRegistry()
	for _, s := range fuzzSeeds() {
		// Split a seed frame into key, version and the rest after the
		// correlation id.
		fr := s[4:]
		f.Add(int16(binary.BigEndian.Uint16(fr)), int16(binary.BigEndian.Uint16(fr[2:])), fr[8:])
	}
	f.Fuzz(func(t *testing.T, key, version int16, rest []byte) {
		frame := binary.BigEndian.AppendUint16(nil, uint16(key))
		frame = binary.BigEndian.AppendUint16(frame, uint16(version))
		frame = binary.BigEndian.AppendUint32(frame, 42)
		frame = append(frame, rest...)
		r, err := parseRequest(reg, frame)
		if errors.Is(err, errDecodePanic) {
			t.Fatal(err)
		}
		if err != nil || r.req == nil {
			return
		}
		if r.hdr.key != key || r.hdr.version != version || r.hdr.correlationID != 42 {
			t.Fatalf("header %+v", r.hdr)
		}
		_ = r.req.AppendTo(nil)
	})
}
