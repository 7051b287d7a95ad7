package postgres_test

import (
	"context"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/testenv"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/postgres"
)

// freezeProxy forwards TCP connections to a target until frozen; then it
// forwards nothing more and closes nothing, as a half-open connection
// (a peer or a middlebox gone silent) looks from either end.
type freezeProxy struct {
	ln     net.Listener
	target string
	frozen chan struct{}
	once   sync.Once
	mu     sync.Mutex
	conns  []net.Conn
}

func startFreezeProxy(t *testing.T, target string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, target: target, frozen: make(chan struct{})}
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

func (p *freezeProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

// pipe copies from src to dst until frozen; once frozen it swallows what
// it reads and keeps both ends open.
func (p *freezeProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.frozen:
			if err != nil {
				return
			}
			continue
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed connection: the test is over
		}
	}
}

func (p *freezeProxy) freeze() { p.once.Do(func() { close(p.frozen) }) }

// Issue 11, item 6: a LISTEN connection that goes silent without closing
// (half-open) must not freeze the agent's view until TCP notices, which
// takes minutes: WatchCommits notices on its own and returns an error, so
// its caller re-syncs and listens again.
func TestWatchCommitsNoticesAHalfOpenConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dbURL := testenv.Postgres(t).NewDatabase(t)
	if err := postgres.Migrate(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startFreezeProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	watcher, err := postgres.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	watcher.SetWatchKeepalive(50*time.Millisecond, 500*time.Millisecond)
	writer, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()

	ready := make(chan struct{})
	got := make(chan string, 4)
	done := make(chan error, 1)
	go func() {
		done <- watcher.WatchCommits(ctx, metastore.CommitHandler{
			Ready:  func(int64) error { close(ready); return nil },
			Commit: func(_, key string) { got <- key },
		})
	}()
	<-ready
	// Idle pings go through while the connection works, and notifications
	// still arrive between them.
	top, err := writer.CreateTopic(ctx, metastore.TopicSpec{Name: "k", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.RecordUpload(ctx, "seg-k", "agent-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.CommitFlush(ctx, metastore.Flush{SegmentKey: "seg-k", AgentID: "agent-a", Size: 1, Chunks: []metastore.Chunk{{
		TopicPartition: metastore.TopicPartition{Topic: top.ID}, Length: 1, OffsetCount: 1, BatchCount: 1,
	}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-got:
		if k != "seg-k" {
			t.Fatalf("notified %q", k)
		}
	case err := <-done:
		t.Fatalf("WatchCommits returned while the connection worked: %v", err)
	case <-ctx.Done():
		t.Fatal("no notification of the commit")
	}

	proxy.freeze()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("WatchCommits returned nil on a dead connection")
		}
	case <-ctx.Done():
		t.Fatal("WatchCommits still waiting on a connection frozen for the whole test")
	}
}
