package wire

import (
	"net"
	"net/netip"
	"time"
)

// Connection-rate throttling (Kafka's connection_creation_rate quota). A
// connection over its IP's rate is not served: like a Kafka broker, the
// Server holds it unread for the throttle time and then closes it, so a
// client that reconnects at once is slowed down too. At most
// maxHeldConnections are held; beyond that a throttled connection is
// closed at once.

const maxHeldConnections = 1024

// throttleConnection reports whether nc is over its connection rate, and
// if so holds it and closes it later.
func (s *Server) throttleConnection(nc net.Conn) bool {
	if s.cfg.ThrottleConnection == nil {
		return false
	}
	var ip netip.Addr
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		ip = ta.AddrPort().Addr()
	} else if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		ip = ap.Addr()
	} else {
		return false
	}
	d := s.cfg.ThrottleConnection(ip.Unmap())
	if d <= 0 {
		return false
	}
	s.log.Debug("connection over its IP's connection creation rate; closing it after the throttle", "remote", nc.RemoteAddr().String(), "throttle", d)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.held >= maxHeldConnections {
		_ = nc.Close()
		return true
	}
	s.held++
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.stopHeld:
			t.Stop()
		}
		_ = nc.Close()
		s.mu.Lock()
		s.held--
		s.mu.Unlock()
	}()
	return true
}
