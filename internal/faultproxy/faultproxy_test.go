package faultproxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func TestTCPForwardsHoldsAndCuts(t *testing.T) {
	p, err := NewTCP(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	roundTrip := func(msg string) string {
		if _, err := c.Write([]byte(msg + "\n")); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return "error: " + err.Error()
		}
		return strings.TrimSuffix(line, "\n")
	}
	if got := roundTrip("one"); got != "one" {
		t.Fatalf("through the proxy: %q", got)
	}

	// Held: nothing comes back until released, then everything does.
	p.Hold()
	got := make(chan string, 1)
	go func() { got <- roundTrip("two") }()
	select {
	case g := <-got:
		t.Fatalf("answer %q while held", g)
	case <-time.After(200 * time.Millisecond): // a bound on the check, not a synchronisation
	}
	p.Release()
	if g := <-got; g != "two" {
		t.Fatalf("after release: %q", g)
	}

	p.Cut()
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("read succeeded on a cut connection")
	}
	if p.Cuts() != 1 {
		t.Fatalf("Cuts() = %d, want 1", p.Cuts())
	}
}

func TestS3SlowDown(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "host="+r.Host)
	}))
	defer backend.Close()
	p, err := NewS3(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	get := func() (int, string) {
		resp, err := http.Get(p.Endpoint() + "/bucket/key")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 200 || body != "host="+strings.TrimPrefix(p.Endpoint(), "http://") {
		t.Fatalf("forwarded: %d %q (the Host header must be the proxy's, as the client signed it)", code, body)
	}
	p.SetSlowDown(true)
	if code, body := get(); code != 503 || !strings.Contains(body, "<Code>SlowDown</Code>") {
		t.Fatalf("slowdown: %d %q", code, body)
	}
	p.SetSlowDown(false)
	if code, _ := get(); code != 200 || p.Refused() != 1 {
		t.Fatalf("after slowdown: %d, refused %d", code, p.Refused())
	}

	p.Hang()
	answered := make(chan int, 1)
	go func() { code, _ := get(); answered <- code }()
	select {
	case code := <-answered:
		t.Fatalf("answer %d while hung", code)
	case <-time.After(200 * time.Millisecond): // a bound on the check, not a synchronisation
	}
	p.Release()
	if code := <-answered; code != 200 {
		t.Fatalf("after release: %d", code)
	}
}
