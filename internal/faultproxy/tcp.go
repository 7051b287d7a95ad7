package faultproxy

import (
	"net"
	"sync"
	"sync/atomic"
)

// TCP forwards every connection it accepts to a target address. Cut closes
// the live connections; Hold stops forwarding bytes in both directions
// (connections stay open, as in a network partition TCP has not noticed)
// until Release. A target that refuses connections is passed on to the
// client as a closed connection.
type TCP struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cond  *sync.Cond
	held  bool
	conns map[net.Conn]net.Conn // client side -> target side
	done  bool
	wg    sync.WaitGroup

	cuts atomic.Int64
}

// NewTCP listens on a free loopback port and forwards to target.
func NewTCP(target string) (*TCP, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &TCP{ln: ln, target: target, conns: make(map[net.Conn]net.Conn)}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to.
func (p *TCP) Addr() string { return p.ln.Addr().String() }

// Cuts is how many connections Cut has closed.
func (p *TCP) Cuts() int64 { return p.cuts.Load() }

// Cut closes every live connection, both sides.
func (p *TCP) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, s := range p.conns {
		c.Close()
		s.Close()
		p.cuts.Add(1)
	}
}

// Hold stops forwarding bytes until Release.
func (p *TCP) Hold() {
	p.mu.Lock()
	p.held = true
	p.mu.Unlock()
}

// Release forwards again what Hold held, and everything after.
func (p *TCP) Release() {
	p.mu.Lock()
	p.held = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Close stops accepting, closes every connection and waits for the
// forwarding goroutines.
func (p *TCP) Close() {
	p.ln.Close()
	p.mu.Lock()
	p.done = true
	p.held = false
	p.cond.Broadcast()
	for c, s := range p.conns {
		c.Close()
		s.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *TCP) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close() // the target is down: the client sees the connection closed
			continue
		}
		p.mu.Lock()
		if p.done {
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		}
		p.conns[c] = s
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(c, s, c, s)
		go p.pipe(c, s, s, c)
	}
}

// pipe copies from src to dst, waiting while the proxy is held. Whichever
// direction ends first closes both sides.
func (p *TCP) pipe(c, s, src, dst net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.held && !p.done {
				p.cond.Wait()
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	c.Close()
	s.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}
