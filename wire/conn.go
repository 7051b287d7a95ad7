package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Conn is one client connection. Handlers get it to learn who is asking; its
// accessors are safe to call from any goroutine.
type Conn struct {
	srv    *Server
	nc     net.Conn
	log    *slog.Logger
	ctx    context.Context // cancelled when the connection or the Server closes
	cancel context.CancelFunc
	// readCtx is ctx, also cancelled by drain: it stops a reader waiting
	// for room in the request budget.
	readCtx   context.Context
	stopReads context.CancelFunc

	listener  Listener
	tls       *TLS                   // nil: not a TLS listener; see tls.go
	sasl      saslState              // reader goroutine only; see sasl.go
	principal atomic.Pointer[string] // nil: AnonymousPrincipal
	clientID  atomic.Pointer[string]
	software  atomic.Pointer[[2]string]

	// slots bounds the requests read but not yet answered: the reader takes
	// a slot before reading a frame, the writer returns it once the reply is
	// written, so queue (of the same capacity) never blocks the reader.
	slots chan struct{}
	queue chan pending

	draining   atomic.Bool  // Shutdown: read no more requests
	mutedUntil atomic.Int64 // unix nanos before which no request is read (throttle.go); 0: never muted
	lastWrite  atomic.Int64 // unix nanos of the last response written
	closeOnce  sync.Once
	done       chan struct{} // closed when reader and writer have exited
}

// pending is a reply waiting for its turn on the writer.
type pending struct {
	noHeader      bool // a framing error: key, version and correlation id are unknown
	key           int16
	version       int16 // the response version
	correlationID int32
	reply         Reply
	start         time.Time    // when the request was read, for Config.Observe
	reserved      int64        // request budget held until the reply is written
	produce       *Reservation // a Produce frame's share of Config.ProduceBudget
}

// ClientID returns the client id of the latest request ("" if null).
func (c *Conn) ClientID() string {
	if p := c.clientID.Load(); p != nil {
		return *p
	}
	return ""
}

// Done is closed once the connection has ended (closed by either side, or
// at shutdown) and its reader and writer have exited, so state a handler
// ties to the connection (Kafka's share sessions) can be dropped.
func (c *Conn) Done() <-chan struct{} { return c.done }

// RemoteAddr returns the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr returns the address the client connected to.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// ClientSoftware returns the client software name and version sent in
// ApiVersions v3+ (KIP-511), or empty strings.
func (c *Conn) ClientSoftware() (name, version string) {
	if p := c.software.Load(); p != nil {
		return p[0], p[1]
	}
	return "", ""
}

func newConn(s *Server, nc net.Conn, l Listener) *Conn {
	ctx, cancel := context.WithCancel(s.ctx)
	readCtx, stopReads := context.WithCancel(ctx)
	return &Conn{
		srv:       s,
		nc:        nc,
		listener:  l,
		log:       s.log.With("remote", nc.RemoteAddr().String()),
		ctx:       ctx,
		cancel:    cancel,
		readCtx:   readCtx,
		stopReads: stopReads,
		slots:     make(chan struct{}, s.cfg.MaxInflight),
		queue:     make(chan pending, s.cfg.MaxInflight),
		done:      make(chan struct{}),
	}
}

// run serves the connection until it closes. It owns the reader and writer
// goroutines and returns after both have exited.
func (c *Conn) run() {
	defer close(c.done)
	if !c.handshake() {
		c.close()
		return
	}
	c.lastWrite.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.writeLoop()
	}()
	c.readLoop()
	wg.Wait()
	c.close()
	// Replies the writer never got to (it stopped on a write error or a
	// CloseConn) still hold request budget.
	for p := range c.queue {
		c.release(p)
	}
}

// release returns what a request holds in the request and produce budgets.
func (c *Conn) release(p pending) {
	c.srv.budget.release(p.reserved)
	p.produce.release()
}

// close closes the socket and cancels handlers' and deferred replies' work.
func (c *Conn) close() {
	c.closeOnce.Do(func() {
		c.cancel()
		_ = c.nc.Close()
	})
}

// drain stops reading requests; the writer finishes the replies already
// queued and then closes the connection.
func (c *Conn) drain() {
	c.draining.Store(true)
	c.stopReads()
	_ = c.nc.SetReadDeadline(time.Now()) // wake a blocked read
}

// readLoop reads, decodes and handles requests in order and queues their
// replies. Closing the queue tells the writer to finish up.
func (c *Conn) readLoop() {
	defer close(c.queue)
	br := bufio.NewReaderSize(c.nc, 16<<10)
	for {
		if !c.waitMuted() {
			return
		}
		select {
		case c.slots <- struct{}{}:
		case <-c.ctx.Done():
			return
		}
		frame, pre, reserved, prod, err := c.readFrame(br)
		if err != nil {
			if reason := c.readError(err); reason != nil {
				c.queue <- pending{noHeader: true, reply: CloseConn(reason)}
			}
			return
		}
		start := time.Now()
		p := c.handle(frame, pre, reserved, prod)
		p.start = start
		c.queue <- p
		if p.reply.kind == replyClose || p.reply.thenClose {
			return
		}
	}
}

// readFrame reads one frame after reserving its cost in the request budget
// (see budget.go), and returns the reservation. While requests are in flight
// or responses were written recently the connection is not idle, so a
// timeout between frames just re-arms the deadline.
func (c *Conn) readFrame(br *bufio.Reader) ([]byte, *request, int64, *Reservation, error) {
	idle := c.srv.cfg.IdleTimeout
	for {
		if err := c.nc.SetReadDeadline(time.Now().Add(idle)); err != nil {
			return nil, nil, 0, nil, err
		}
		if c.draining.Load() { // after arming the deadline, so drain's wake-up is not lost
			return nil, nil, 0, nil, errDraining
		}
		size, n, err := readFrameSize(br, c.srv.cfg.MaxRequestBytes)
		if err != nil {
			if n == 0 && isTimeout(err) && !c.draining.Load() {
				sinceWrite := time.Since(time.Unix(0, c.lastWrite.Load()))
				if len(c.slots) > 1 || sinceWrite < idle {
					continue
				}
				return nil, nil, 0, nil, errIdle
			}
			return nil, nil, 0, nil, err
		}
		if size > MaxPreAuthRequestBytes && c.needsAuthentication() {
			// Refused before a byte of it is read (sasl.go).
			return nil, nil, 0, nil, protocolErrorf("frame size %d before SASL authentication exceeds %d", size, MaxPreAuthRequestBytes)
		}
		return c.readAdmitted(br, size)
	}
}

// readAdmitted reserves what a frame of size bytes costs, waiting while the
// budget is used up (reading nothing meanwhile), then reads its body. A
// Produce frame reserves in Config.ProduceBudget if there is one.
func (c *Conn) readAdmitted(br *bufio.Reader, size int32) ([]byte, *request, int64, *Reservation, error) {
	kb, err := br.Peek(2) // the API key prices the decode
	if err != nil {
		return nil, nil, 0, nil, err
	}
	key := int16(binary.BigEndian.Uint16(kb))
	if err := c.admitBeforeReading(key); err != nil {
		return nil, nil, 0, nil, err
	}
	if key == int16(kmsg.Produce) && c.srv.cfg.ProduceBudget != nil {
		r, err := c.reserveProduce(size)
		if err != nil {
			return nil, nil, 0, nil, err
		}
		if c.streamsProduce(br) {
			// Decoded as it is read, a record set per allocation
			// (produceread.go).
			h, req, err := readProduce(br, size)
			if err != nil {
				r.release()
				return nil, nil, 0, nil, err
			}
			e, _ := c.srv.reg.lookup(h.key)
			return nil, &request{hdr: h, req: req, handler: e.handler}, 0, r, nil
		}
		frame, err := readFrameBody(br, size)
		if err != nil {
			r.release()
			return nil, nil, 0, nil, err
		}
		return frame, nil, 0, r, nil
	}
	n, err := c.srv.admission(key, size)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	if err := c.srv.budget.acquire(c.readCtx, n); err != nil {
		return nil, nil, 0, nil, errDraining // the connection is closing or draining
	}
	frame, err := readFrameBody(br, size)
	if err != nil {
		c.srv.budget.release(n)
		return nil, nil, 0, nil, err
	}
	return frame, nil, n, nil, nil
}

// streamsProduce reports whether the Produce frame whose body br holds
// next is decoded as it is read: a version readProduce knows and the
// registry serves. Others are read whole, for parseRequest to decode or
// refuse.
func (c *Conn) streamsProduce(br *bufio.Reader) bool {
	b, err := br.Peek(4)
	if err != nil {
		return false // the whole-frame read reports it
	}
	v := int16(binary.BigEndian.Uint16(b[2:]))
	e, ok := c.srv.reg.lookup(int16(kmsg.Produce))
	return ok && v >= minStreamedProduceVersion && v <= maxStreamedProduceVersion && v >= e.min && v <= e.max
}

var (
	errDraining = errors.New("server shutting down")
	errIdle     = errors.New("idle timeout")
)

// readError classifies why reading stopped: nil for an orderly end (EOF
// between frames, shutdown, idle, or the connection already closing), else
// the reason to log on close.
func (c *Conn) readError(err error) error {
	var pe *protocolError
	switch {
	case errors.As(err, &pe):
		return err
	case c.ctx.Err() != nil, errors.Is(err, errDraining), c.draining.Load():
		return nil
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.log.Debug("client closed connection")
		return nil
	case errors.Is(err, errIdle):
		c.log.Debug("closing idle connection", "idle_timeout", c.srv.cfg.IdleTimeout)
		return nil
	}
	return fmt.Errorf("read request: %w", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// handle decodes a frame (unless it was decoded as it was read: pre) and
// runs its handler. reserved is the frame's request budget and prod its
// produce budget, which the pending reply carries to the writer.
func (c *Conn) handle(frame []byte, pre *request, reserved int64, prod *Reservation) pending {
	var r request
	var err error
	if pre != nil {
		r = *pre
	} else {
		r, err = parseRequest(c.srv.reg, frame)
	}
	h := r.hdr
	p := pending{key: h.key, version: h.version, correlationID: h.correlationID, reserved: reserved, produce: prod}
	if err != nil {
		p.reply = CloseConn(err)
		return p
	}
	if err := c.admit(h.key); err != nil {
		p.reply = CloseConn(err)
		return p
	}
	if r.req != nil && h.key != int16(kmsg.Produce) {
		// The worst case is behind us: keep the frame and what it
		// decoded into.
		keep := min(reserved, int64(len(frame))+decodedBytes(reflect.ValueOf(r.req)))
		c.srv.budget.release(reserved - keep)
		p.reserved = keep
	}
	if h.clientID != nil {
		if cur := c.clientID.Load(); cur == nil || *cur != *h.clientID {
			c.clientID.Store(h.clientID)
		}
	}
	if c.log.Enabled(c.ctx, slog.LevelDebug) {
		c.log.Debug("request", "key", h.key, "api", kmsg.NameForKey(h.key), "version", h.version,
			"correlation_id", h.correlationID, "client_id", c.ClientID())
	}
	if h.key == apiVersionsKey {
		p.reply = c.srv.answerApiVersions(c, r.req)
		if r.req == nil {
			p.version = 0 // KIP-511: the error response is v0
		}
		return p
	}
	p.reply = c.callHandler(r.handler, r.req, prod)
	return p
}

func (c *Conn) callHandler(h Handler, req kmsg.Request, prod *Reservation) (reply Reply) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("handler panicked", "api", kmsg.NameForKey(req.Key()), "version", req.GetVersion(),
				"panic", p, "stack", string(debug.Stack()))
			reply = Reply{kind: replyClose}
		}
	}()
	ctx := c.ctx
	if prod != nil {
		ctx = context.WithValue(ctx, reservationKey{}, prod)
	}
	return h(ctx, c, req)
}

// writeLoop writes replies in request order until the queue closes or a
// reply closes the connection.
func (c *Conn) writeLoop() {
	defer c.close()
	bw := bufio.NewWriterSize(c.nc, 16<<10)
	var buf []byte
	for p := range c.queue {
		resp, ok := c.await(p, bw)
		if !ok {
			c.release(p)
			_ = c.flush(bw)
			return
		}
		if resp != nil {
			var err error
			if buf, err = c.encode(buf[:0], p, resp); err != nil {
				c.release(p)
				c.log.Error("closing connection", "api", kmsg.NameForKey(p.key), "version", p.version, "err", err)
				_ = c.flush(bw)
				return
			}
			if obs := c.srv.cfg.Observe; obs != nil {
				obs(p.key, p.version, time.Since(p.start), resp)
			}
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.IdleTimeout))
			if _, err := bw.Write(buf); err != nil {
				c.release(p)
				c.writeFailed(err)
				return
			}
			buf = reusable(buf)
		}
		c.release(p)
		<-c.slots
		if p.reply.thenClose {
			_ = c.flush(bw)
			return
		}
		if len(c.queue) == 0 {
			if err := c.flush(bw); err != nil {
				c.writeFailed(err)
				return
			}
		}
	}
	_ = c.flush(bw)
}

// maxKeptEncodeBuffer is the largest encode buffer a connection keeps
// between responses. One large Fetch response must not stay allocated for
// the life of every connection that once received one.
const maxKeptEncodeBuffer = 1 << 20

// reusable returns buf if it is small enough to keep for the next response.
func reusable(buf []byte) []byte {
	if cap(buf) > maxKeptEncodeBuffer {
		return nil
	}
	return buf
}

// await resolves a reply into a response to write (nil for none). ok is false
// when the connection must close.
func (c *Conn) await(p pending, bw *bufio.Writer) (resp kmsg.Response, ok bool) {
	var attrs []any
	if !p.noHeader {
		attrs = []any{"key", p.key, "api", kmsg.NameForKey(p.key), "version", p.version, "correlation_id", p.correlationID}
	}
	switch p.reply.kind {
	case replyNow:
		return p.reply.resp, c.checkResponse(p, p.reply.resp)
	case replyNone:
		return nil, true
	case replyClose:
		if p.reply.reason != nil {
			c.log.Warn("closing connection", append(attrs, "reason", p.reply.reason)...)
		}
		return nil, false
	case replyDeferred:
		if p.reply.wait == nil {
			c.log.Error("closing connection: handler returned Defer(nil)", attrs...)
			return nil, false
		}
		// Earlier replies must not sit in the buffer while we wait.
		if bw.Buffered() > 0 {
			if err := c.flush(bw); err != nil {
				c.writeFailed(err)
				return nil, false
			}
		}
		resp, ok := c.callWait(p)
		if !ok {
			return nil, false
		}
		if resp == nil {
			if c.ctx.Err() == nil {
				c.log.Error("closing connection: deferred reply returned no response", attrs...)
			}
			return nil, false
		}
		return resp, c.checkResponse(p, resp)
	default:
		c.log.Error("closing connection: handler returned the zero Reply", attrs...)
		return nil, false
	}
}

func (c *Conn) callWait(p pending) (resp kmsg.Response, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("deferred reply panicked", "api", kmsg.NameForKey(p.key), "version", p.version,
				"panic", r, "stack", string(debug.Stack()))
			resp, ok = nil, false
		}
	}()
	return p.reply.wait(c.ctx), true
}

// checkResponse catches handler bugs that would put the wrong message on the
// wire.
func (c *Conn) checkResponse(p pending, resp kmsg.Response) bool {
	switch {
	case resp == nil:
		c.log.Error("closing connection: handler responded with nil", "api", kmsg.NameForKey(p.key))
		return false
	case resp.Key() != p.key:
		c.log.Error("closing connection: handler responded with the wrong API",
			"api", kmsg.NameForKey(p.key), "response_api", kmsg.NameForKey(resp.Key()))
		return false
	}
	return true
}

func (c *Conn) encode(dst []byte, p pending, resp kmsg.Response) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic encoding response: %v\n%s", r, debug.Stack())
		}
	}()
	resp.SetVersion(p.version)
	out = appendResponse(dst, p.correlationID, resp)
	if len(out)-4 > math.MaxInt32 {
		return dst, fmt.Errorf("response of %d bytes does not fit a frame", len(out)-4)
	}
	return out, nil
}

func (c *Conn) flush(bw *bufio.Writer) error {
	if bw.Buffered() == 0 {
		return nil
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.IdleTimeout))
	if err := bw.Flush(); err != nil {
		return err
	}
	c.lastWrite.Store(time.Now().UnixNano())
	return nil
}

func (c *Conn) writeFailed(err error) {
	if c.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		c.log.Debug("write response failed; closing connection", "err", err)
	}
}
