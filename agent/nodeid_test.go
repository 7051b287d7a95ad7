package agent_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/cache"
	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
)

// fastMembership makes agents see each other (and lapses) quickly.
func fastMembership(id string, node int32) func(*agent.Config) {
	return func(c *agent.Config) {
		c.ID, c.NodeID = id, node
		c.Heartbeat = 50 * time.Millisecond
		c.MembershipTTL = 500 * time.Millisecond
	}
}

// serveAgent starts an agent like startAgentOn, but hands back the error
// its ServeListener returns instead of failing the test.
func serveAgent(t *testing.T, store metastore.Store, bucket objectstore.Bucket, mutate func(*agent.Config)) (addr string, served <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.DefaultConfig()
	cfg.Listen = ln.Addr().String()
	cfg.FlushInterval = 20 * time.Millisecond
	mutate(&cfg)
	cb, err := cache.New(bucket, cache.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cb.Stop)
	a, err := agent.New(cfg, cb, store)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.Shutdown(ctx)
		ln.Close()
	})
	return ln.Addr().String(), done
}

// TestNodeIDConfigured: an agent given node.id answers as that broker, and
// so does its successor (a new process, a new agent id) after a restart,
// whether the predecessor left or was killed; an agent given a node id a
// live agent holds refuses to start, naming the holder.
func TestNodeIDConfigured(t *testing.T) {
	t.Parallel()
	s := postgresMinIO.newStorage(t)

	first := startAgentOn(t, s.openStore(t), s.bucket, fastMembership("first", 1))
	if ids := brokerIDs(t, first); len(ids) != 1 || ids[0] != 1 {
		t.Fatalf("node ids listed: %v, want [1]", ids)
	}
	first.stop(t) // leaves the cluster
	second := startAgentOn(t, s.openStore(t), s.bucket, fastMembership("second", 1))
	if ids := brokerIDs(t, second); len(ids) != 1 || ids[0] != 1 {
		t.Fatalf("node ids after a restart: %v, want [1]", ids)
	}

	// Another agent given node id 1 while second lives: refused.
	_, served := serveAgent(t, s.openStore(t), s.bucket, fastMembership("usurper", 1))
	var err error
	poll.Until(t, "the usurper to refuse to start", func() bool {
		select {
		case err = <-served:
			return true
		default:
			return false
		}
	})
	var taken *metastore.NodeIDTakenError
	if !errors.As(err, &taken) || taken.Holder.ID != "second" || !strings.Contains(err.Error(), "node.id") {
		t.Fatalf("usurper's Serve: %v, want a node.id error naming agent second", err)
	}
	if ids := brokerIDs(t, second); len(ids) != 1 || ids[0] != 1 {
		t.Fatalf("node ids after the refusal: %v, want [1]", ids)
	}

	// A predecessor that was killed (never leaves, stops heartbeating)
	// holds its id until its lease lapses; its successor waits for that.
	store := s.openStore(t)
	if err := store.RegisterAgent(context.Background(), metastore.Agent{ID: "killed", Addr: "127.0.0.1:1", NodeID: ptr(int32(2))}, time.Second); err != nil {
		t.Fatal(err)
	}
	successor := startAgentOn(t, s.openStore(t), s.bucket, fastMembership("successor", 2))
	poll.Until(t, "the successor listed as node 2 beside node 1", func() bool {
		ids := brokerIDs(t, successor)
		return len(ids) == 2 && ids[0] == 1 && ids[1] == 2
	})
}

// TestNodeIDRefusedByConfig: a node id below -1 is a config error naming
// the key.
func TestNodeIDRefusedByConfig(t *testing.T) {
	cfg := agent.DefaultConfig()
	cfg.NodeID = -2
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "node.id") {
		t.Fatalf("Validate with node.id -2: %v", err)
	}
}
