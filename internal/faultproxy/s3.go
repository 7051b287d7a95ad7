package faultproxy

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// S3 is an HTTP reverse proxy in front of an S3 server. While SlowDown is
// on it answers every request with 503 SlowDown and the XML error body AWS
// sends, without passing it on; while hung (Hang until Release) requests
// wait, unanswered, as behind a network partition; otherwise it forwards
// requests unchanged (the Host header included, so SigV4 signatures still
// verify). A target that is down is answered 502, as a load balancer would.
type S3 struct {
	srv      *http.Server
	ln       net.Listener
	slowDown atomic.Bool
	refused  atomic.Int64

	mu   sync.Mutex
	hung chan struct{} // non-nil while hung; closed by Release
}

// NewS3 listens on a free loopback port and forwards to the S3 endpoint
// target ("http://host:port").
func NewS3(target string) (*S3, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("parse S3 endpoint %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &S3{ln: ln}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		w.WriteHeader(http.StatusBadGateway)
	}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p.slowDown.Load() {
				p.refused.Add(1)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
					`<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><Resource>%s</Resource><RequestId>%d</RequestId></Error>`,
					r.URL.Path, time.Now().UnixNano())
				return
			}
			p.mu.Lock()
			hung := p.hung
			p.mu.Unlock()
			if hung != nil {
				select {
				case <-hung:
				case <-r.Context().Done():
					return
				}
			}
			rp.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: time.Minute,
	}
	go p.srv.Serve(ln)
	return p, nil
}

// Endpoint is the URL clients use instead of the server's.
func (p *S3) Endpoint() string { return "http://" + p.ln.Addr().String() }

// SetSlowDown turns the 503 SlowDown answers on or off.
func (p *S3) SetSlowDown(on bool) { p.slowDown.Store(on) }

// Hang makes requests wait, unanswered, until Release.
func (p *S3) Hang() {
	p.mu.Lock()
	if p.hung == nil {
		p.hung = make(chan struct{})
	}
	p.mu.Unlock()
}

// Release forwards the requests Hang held, and every one after.
func (p *S3) Release() {
	p.mu.Lock()
	if p.hung != nil {
		close(p.hung)
		p.hung = nil
	}
	p.mu.Unlock()
}

// Refused is how many requests were answered SlowDown.
func (p *S3) Refused() int64 { return p.refused.Load() }

// Close stops the proxy.
func (p *S3) Close() {
	p.Release()
	p.srv.Close()
}
