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
