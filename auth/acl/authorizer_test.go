package acl

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/metastore"
)

// lockedStore is a store changed while Run reads it.
type lockedStore struct {
	mu sync.Mutex
	bs []Binding
}

func (s *lockedStore) ACLs(context.Context, metastore.ACLFilter) ([]metastore.ACL, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Binding(nil), s.bs...), nil
}

func (s *lockedStore) set(bs ...Binding) {
	s.mu.Lock()
	s.bs = bs
	s.mu.Unlock()
}

// TestAuthorizerReloads: Changed makes Run reload at once; without any
// notification the periodic re-read still picks a change up, so a lost
// notification heals.
func TestAuthorizerReloads(t *testing.T) {
	readOrders := bind(topic, lit, "orders", "User:alice", "*", metastore.OpRead, allow)
	canRead := func(a *Authorizer) bool { return a.Authorize("User:alice", someIP, metastore.OpRead, topic, "orders") }

	st := &lockedStore{}
	notified := New(Config{RefreshInterval: time.Hour}, st)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go notified.Run(ctx, func(err error) { t.Error(err) })
	st.set(readOrders)
	notified.Changed()
	poll.Until(t, "a notified change is applied", func() bool { return canRead(notified) })

	st2 := &lockedStore{}
	periodic := New(Config{RefreshInterval: 50 * time.Millisecond}, st2)
	go periodic.Run(ctx, func(err error) { t.Error(err) })
	st2.set(readOrders) // and no Changed: the notification was lost
	poll.Until(t, "the periodic re-read applies an unnotified change", func() bool { return canRead(periodic) })
}

// heldStore answers its first read with what the store held then, but only
// once released: a reload that read before a change and finishes after it.
type heldStore struct {
	lockedStore
	once    sync.Once
	reading chan struct{}
	release chan struct{}
}

func (s *heldStore) ACLs(ctx context.Context, f metastore.ACLFilter) ([]metastore.ACL, error) {
	bs, err := s.lockedStore.ACLs(ctx, f)
	held := false
	s.once.Do(func() { held = true })
	if held {
		close(s.reading)
		<-s.release
	}
	return bs, err
}

// A reload that read the bindings before a change but finishes after a
// later reload must not put the older bindings back (seen as an ACL just
// created denying a request on the agent that created it).
func TestSlowReloadDoesNotUndoALaterOne(t *testing.T) {
	readOrders := bind(topic, lit, "orders", "User:alice", "*", metastore.OpRead, allow)
	st := &heldStore{reading: make(chan struct{}), release: make(chan struct{})}
	a := New(Config{RefreshInterval: time.Hour}, st)
	ctx := context.Background()
	slow := make(chan error, 1)
	go func() { slow <- a.Reload(ctx) }() // reads the empty set, then waits
	<-st.reading
	st.set(readOrders)
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	close(st.release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if !a.Authorize("User:alice", someIP, metastore.OpRead, topic, "orders") {
		t.Fatal("the slow reload's older bindings replaced the newer ones")
	}
}
