package e2e

import (
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// chaosProxy forwards TCP connections to a target and, while chaos is on,
// cuts a random live connection every few hundred milliseconds: the network
// failures a producer must survive without losing or duplicating records.
type chaosProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]net.Conn // client side -> target side
	chaos  atomic.Bool
	cuts   atomic.Int64
	done   chan struct{}
	wg     sync.WaitGroup
}

func startChaosProxy(t *testing.T, target string) *chaosProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &chaosProxy{ln: ln, target: target, conns: make(map[net.Conn]net.Conn), done: make(chan struct{})}
	p.wg.Add(2)
	go p.accept()
	go p.cutLoop()
	t.Cleanup(p.close)
	return p
}

func (p *chaosProxy) addr() string { return p.ln.Addr().String() }

func (p *chaosProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close() // the agent is down (killed): the client sees a refused connection
			continue
		}
		p.mu.Lock()
		p.conns[c] = s
		p.mu.Unlock()
		go p.pipe(c, s)
	}
}

func (p *chaosProxy) pipe(c, s net.Conn) {
	done := make(chan struct{}, 2)
	go func() { io.Copy(s, c); done <- struct{}{} }()
	go func() { io.Copy(c, s); done <- struct{}{} }()
	<-done
	c.Close()
	s.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *chaosProxy) cutLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.done:
			return
		case <-time.After(time.Duration(200+rand.IntN(400)) * time.Millisecond):
		}
		if !p.chaos.Load() {
			continue
		}
		p.mu.Lock()
		for c, s := range p.conns { // map order is random enough
			c.Close()
			s.Close()
			p.cuts.Add(1)
			break
		}
		p.mu.Unlock()
	}
}

func (p *chaosProxy) close() {
	close(p.done)
	p.ln.Close()
	p.mu.Lock()
	for c, s := range p.conns {
		c.Close()
		s.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
