package cache

import "sync"

// flight makes concurrent loads of one block a single load: the first
// caller creates the call and starts it, later ones wait for it. (It is
// singleflight, kept here because read-ahead must register a load before
// starting the goroutine that runs it, so that a reader arriving a moment
// later waits for it, and so Stop owns that goroutine from its first
// instruction.)
type flight struct {
	mu    sync.Mutex // guards calls
	calls map[blockID]*call
}

type call struct {
	done chan struct{} // closed when res and err are set
	res  loadResult
	err  error
}

// join returns the running call for id, or a new one that the caller must
// finish, with leader set.
func (f *flight) join(id blockID) (c *call, leader bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.calls[id]; ok {
		return c, false
	}
	if f.calls == nil {
		f.calls = make(map[blockID]*call)
	}
	c = &call{done: make(chan struct{})}
	f.calls[id] = c
	return c, true
}

// finish publishes the result of a call and lets the next caller start a
// new one.
func (f *flight) finish(id blockID, c *call, res loadResult, err error) {
	c.res, c.err = res, err
	f.mu.Lock()
	delete(f.calls, id)
	f.mu.Unlock()
	close(c.done)
}
