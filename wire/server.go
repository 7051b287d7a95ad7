package wire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config configures a Server. Zero values take the defaults of DefaultConfig.
type Config struct {
	// MaxRequestBytes is the largest request frame accepted; a larger one
	// closes the connection, as Kafka's socket.request.max.bytes does.
	// Default 100 MiB.
	MaxRequestBytes int32
	// MaxInflightRequestBytes is the memory budget, shared by all
	// connections, of requests read but not yet answered: frames and what
	// they decode into (see budget.go). A connection stops reading while
	// its next frame does not fit. Kafka's queued.max.request.bytes.
	// Default 100 MiB.
	MaxInflightRequestBytes int64
	// MaxInflight is how many pipelined requests per connection may await
	// their response before the server stops reading from it. Default 64.
	MaxInflight int
	// IdleTimeout closes connections with no requests in flight and no
	// traffic for this long; it also bounds how long writing one response
	// may block. Default 10 minutes.
	IdleTimeout time.Duration
	// ProduceBudget, if set, is where Produce frames reserve their bytes
	// instead of the request budget (see Budget and TakeReserved).
	ProduceBudget Budget
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
	// Observe, if set, is called on the connection's writer goroutine after
	// each response is encoded, with the request's API key and version, the
	// time from reading the request to encoding its response, and the
	// response. It must be quick and must not keep or modify resp. Requests
	// answered with no response (acks=0) or by closing the connection are
	// not observed.
	Observe func(key, version int16, dur time.Duration, resp kmsg.Response)
	// Authenticator runs SASL on SASL_PLAINTEXT and SASL_SSL listeners
	// (sasl.go). If set, the Server answers SaslHandshake and
	// SaslAuthenticate itself; a SASL listener needs it.
	Authenticator Authenticator
	// FailedAuthenticationDelay is how long a failed authentication waits
	// before its answer and the connection's close (Kafka's
	// connection.failed.authentication.delay.ms). Default 100ms; negative
	// means no delay.
	FailedAuthenticationDelay time.Duration
	// ThrottleConnection, if set, is asked for every accepted connection
	// with the client's IP: a positive answer is how long to hold the
	// connection unread before closing it (connthrottle.go), for a client
	// over its connection_creation_rate quota.
	ThrottleConnection func(ip netip.Addr) time.Duration
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		MaxRequestBytes:           100 << 20,
		MaxInflightRequestBytes:   100 << 20,
		MaxInflight:               64,
		IdleTimeout:               10 * time.Minute,
		FailedAuthenticationDelay: 100 * time.Millisecond,
	}
}

// ErrServerClosed is returned by Serve after Close or Shutdown has begun.
var ErrServerClosed = errors.New("wire: server closed")

// Server serves the Kafka protocol, dispatching requests through a Registry.
type Server struct {
	cfg      Config
	reg      *Registry
	log      *slog.Logger
	apiKeys  []kmsg.ApiVersionsResponseApiKey // what ApiVersions advertises
	features []Feature                        // and the features it reports (v3+)

	budget          *budget         // in-flight request memory, shared by all connections
	expiredSessions atomic.Int64    // see ExpiredSessionsClosed
	decodeAmp       map[int16]int64 // per registered API key; see budget.go

	ctx    context.Context // cancelled by Close: stops every connection's work
	cancel context.CancelFunc

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	wg        sync.WaitGroup // connection goroutines; Add only under mu while !closing
	held      int            // throttled connections held before closing (connthrottle.go)
	stopHeld  chan struct{}  // closed when the Server starts closing: held connections close at once
}

// NewServer validates cfg and returns a Server dispatching through reg, which
// it freezes: later Register calls panic.
func NewServer(cfg Config, reg *Registry) (*Server, error) {
	def := DefaultConfig()
	switch {
	case reg == nil:
		return nil, errors.New("wire: NewServer: nil Registry")
	case cfg.MaxRequestBytes < 0:
		return nil, fmt.Errorf("wire: Config.MaxRequestBytes must be positive, got %d", cfg.MaxRequestBytes)
	case cfg.MaxRequestBytes > 0 && cfg.MaxRequestBytes < minRequestHeaderLen:
		return nil, fmt.Errorf("wire: Config.MaxRequestBytes %d is smaller than a request header (%d bytes)",
			cfg.MaxRequestBytes, minRequestHeaderLen)
	case cfg.MaxInflightRequestBytes < 0:
		return nil, fmt.Errorf("wire: Config.MaxInflightRequestBytes must be positive, got %d", cfg.MaxInflightRequestBytes)
	case cfg.MaxInflightRequestBytes > 0 && cfg.MaxInflightRequestBytes < minRequestHeaderLen:
		return nil, fmt.Errorf("wire: Config.MaxInflightRequestBytes %d is smaller than a request header (%d bytes)",
			cfg.MaxInflightRequestBytes, minRequestHeaderLen)
	case cfg.MaxInflight < 0:
		return nil, fmt.Errorf("wire: Config.MaxInflight must be positive, got %d", cfg.MaxInflight)
	case cfg.IdleTimeout < 0:
		return nil, fmt.Errorf("wire: Config.IdleTimeout must not be negative, got %s", cfg.IdleTimeout)
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = def.MaxRequestBytes
	}
	if cfg.MaxInflightRequestBytes == 0 {
		cfg.MaxInflightRequestBytes = def.MaxInflightRequestBytes
	}
	if cfg.MaxInflight == 0 {
		cfg.MaxInflight = def.MaxInflight
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = def.IdleTimeout
	}
	if cfg.FailedAuthenticationDelay == 0 {
		cfg.FailedAuthenticationDelay = def.FailedAuthenticationDelay
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:       cfg,
		reg:       reg,
		budget:    newBudget(cfg.MaxInflightRequestBytes),
		log:       log,
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*Conn]struct{}),
		stopHeld:  make(chan struct{}),
	}
	if cfg.Authenticator != nil {
		s.registerSASL(reg)
	}
	reg.freeze()
	s.apiKeys = reg.Versions()
	s.features = reg.Features()
	s.decodeAmp = make(map[int16]int64, len(reg.entries))
	for key := range reg.entries {
		s.decodeAmp[key] = decodeAmp(key)
	}
	return s, nil
}

// ServeListener accepts connections on ln, which came from the listener l
// describes, until Close or Shutdown, then returns nil; it returns
// ErrServerClosed if the Server is already closing, or the listener's error
// if accepting fails for good. It closes ln. It may be called for several
// listeners. It serves ln's connections as they are: an SSL or SASL_SSL
// listener should be served with ServeTLS, which runs the handshake with a
// deadline and maps client certificates to principals, unless ln already
// speaks TLS (tls.NewListener).
func (s *Server) ServeListener(ln net.Listener, l Listener) error {
	return s.serve(ln, l, nil)
}

// serve is ServeListener and ServeTLS; t is nil for a listener without TLS.
func (s *Server) serve(ln net.Listener, l Listener, t *TLS) error {
	if l.Protocol.UsesSASL() && s.cfg.Authenticator == nil {
		_ = ln.Close()
		return fmt.Errorf("wire: listener %s is %s but Config.Authenticator is not set", l.Name, l.Protocol)
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		_ = ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporaryAcceptError(err) {
				// Like net/http: back off on e.g. EMFILE instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
				select {
				case <-time.After(backoff):
					continue
				case <-s.ctx.Done():
					return nil
				}
			}
			return fmt.Errorf("wire: accept on %s: %w", ln.Addr(), err)
		}
		backoff = 0
		if s.throttleConnection(nc) {
			continue
		}
		s.startConnTLS(nc, l, t)
	}
}

// startConn tracks nc and serves it on new goroutines; it returns nil if the
// Server is closing.
func (s *Server) startConn(nc net.Conn, l Listener) *Conn { return s.startConnTLS(nc, l, nil) }

// startConnTLS is startConn after a TLS handshake if t is set.
func (s *Server) startConnTLS(nc net.Conn, l Listener, t *TLS) *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		_ = nc.Close()
		return nil
	}
	c := newConn(s, wrapTLS(nc, t), l)
	c.tls = t
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.log.Debug("connection opened", "local", nc.LocalAddr().String())
		c.run()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.log.Debug("connection closed")
	}()
	return c
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// stopAccepting marks the Server closing and closes its listeners.
// s.mu must be held.
func (s *Server) stopAccepting() {
	if !s.closing {
		close(s.stopHeld)
	}
	s.closing = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
}

// Close stops accepting, closes every connection without waiting for
// in-flight replies, and waits for connection goroutines to exit. It cancels
// the context given to handlers and deferred replies, which must then return
// promptly: Close waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.stopAccepting()
	s.cancel()
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Shutdown stops accepting and reading new requests, lets each connection
// write the replies already in flight, then closes it. If ctx ends first it
// closes everything as Close does and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopAccepting()
	for c := range s.conns {
		c.drain()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		_ = s.Close()
		<-done
		return ctx.Err()
	}
}

// InflightRequestBytes returns the request budget in use and its limit.
func (s *Server) InflightRequestBytes() (inUse, limit int64) {
	return s.budget.inUse.Load(), s.budget.limit
}

// ConnCount returns the number of open connections.
func (s *Server) ConnCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// isTemporaryAcceptError reports accept errors worth retrying: running out of
// file descriptors or memory, or a connection aborted before we accepted it.
func isTemporaryAcceptError(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}
