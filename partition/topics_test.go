package partition

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/metastore"
)

// listingStore counts topic listings and holds each until released.
type listingStore struct {
	Store
	listings atomic.Int32
	started  chan struct{}
	release  chan struct{}
}

func (s *listingStore) Topics(ctx context.Context) ([]metastore.Topic, error) {
	s.listings.Add(1)
	s.started <- struct{}{}
	<-s.release
	return nil, nil
}

// TestRefreshFreshSharesListings: callers arriving while a listing is read
// share the one after it (not the one in flight, which began before them),
// so ten callers cost two listings, and each sees a listing begun after
// its call.
func TestRefreshFreshSharesListings(t *testing.T) {
	st := &listingStore{started: make(chan struct{}), release: make(chan struct{})}
	ts := NewTopics(st)
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { first <- ts.RefreshFresh(ctx) }()
	<-st.started // the first listing is being read
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- ts.RefreshFresh(ctx) }()
	}
	// Every caller has queued for the second listing, which has not begun.
	poll.Until(t, "ten callers waiting", func() bool {
		ts.freshMu.Lock()
		defer ts.freshMu.Unlock()
		return ts.freshest != nil && ts.freshest.waiters == 10
	})
	select {
	case err := <-errs:
		t.Fatalf("a caller that came during the first listing returned before the second began: %v", err)
	default:
	}
	st.release <- struct{}{} // the first listing ends
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	<-st.started // the second, shared one
	st.release <- struct{}{}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := st.listings.Load(); n != 2 {
		t.Fatalf("%d listings for eleven callers, want 2", n)
	}
}
