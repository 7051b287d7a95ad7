package main

// A TCP proxy in front of MinIO that caps the bandwidth of what clients
// send (uploads) and leaves what they receive alone, so the overload phase
// can make segment uploads the bottleneck on a machine where the real
// MinIO is far faster than the agent can be fed.

import (
	"io"
	"net"
	"sync"
	"time"
)

// throttledProxy forwards connections from its listener to target; the
// client→target direction of all connections together is limited to
// bytesPerSec.
type throttledProxy struct {
	ln     net.Listener
	target string
	limit  *byteRate
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func startThrottledProxy(target string, bytesPerSec float64) (*throttledProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &throttledProxy{ln: ln, target: target, limit: &byteRate{perSec: bytesPerSec}, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *throttledProxy) addr() string { return p.ln.Addr().String() }

func (p *throttledProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, up) {
			return
		}
		var pair sync.WaitGroup
		pair.Add(2)
		p.wg.Add(3)
		go func() {
			defer p.wg.Done()
			defer pair.Done()
			p.limit.copy(up, c)
			closeWrite(up)
		}()
		go func() {
			defer p.wg.Done()
			defer pair.Done()
			io.Copy(c, up)
			closeWrite(c)
		}()
		go func() {
			defer p.wg.Done()
			pair.Wait()
			p.untrack(c, up)
		}()
	}
}

func (p *throttledProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *throttledProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(p.conns, c)
	}
}

// close stops accepting, cuts every connection and waits for the copiers.
func (p *throttledProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// byteRate is a shared pacer: each chunk is sent no earlier than the total
// sent so far allows at perSec, with at most 50 ms of burst.
type byteRate struct {
	perSec float64
	mu     sync.Mutex
	next   time.Time
}

func (r *byteRate) wait(n int) {
	r.mu.Lock()
	now := time.Now()
	if r.next.Before(now.Add(-50 * time.Millisecond)) {
		r.next = now.Add(-50 * time.Millisecond)
	}
	r.next = r.next.Add(time.Duration(float64(n) / r.perSec * float64(time.Second)))
	d := r.next.Sub(now)
	r.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
}

// copy is io.Copy paced by r, in chunks small enough to keep the pace
// smooth.
func (r *byteRate) copy(dst io.Writer, src io.Reader) {
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.wait(n)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
