package wire

import (
	"context"
	"sync/atomic"
	"time"
)

// Budget is memory a Server shares with the code behind it. With
// Config.ProduceBudget set, a Produce frame reserves its size there (rather
// than in the request budget) before its body is read, so a connection
// whose produce does not fit stops reading, and the frames waiting to be
// read cost nothing.
//
// This is how the write buffer bounds all produced bytes in the agent: the
// bytes of a Produce request are reserved once, when its frame is read, and
// the handler takes the reservation over (TakeReserved) and hands it to the
// write pipeline, which holds it until the batches are committed. Frames
// waiting for a handler, batches buffered, segments uploading: one budget.
type Budget interface {
	// Acquire waits until n bytes are free, or returns ctx's error.
	Acquire(ctx context.Context, n int64) error
	// Release returns n bytes.
	Release(n int64)
	// Limit is the whole budget; a frame larger than it reserves all of it.
	Limit() int64
}

// Reservation is what a Produce frame holds in Config.ProduceBudget.
type Reservation struct {
	budget Budget
	n      atomic.Int64 // bytes still held; 0 once taken or released
	waited time.Duration
}

// release returns what is still held (nothing if the handler took it).
func (r *Reservation) release() {
	if r == nil {
		return
	}
	if n := r.n.Swap(0); n > 0 {
		r.budget.Release(n)
	}
}

type reservationKey struct{}

// TakeReserved hands the handler of a Produce request the bytes its frame
// holds in Config.ProduceBudget, and how long reading it waited for them.
// From then on releasing them is the caller's job; the Server no longer
// releases them when the reply is written. It returns 0 when there is no
// such reservation (no ProduceBudget, another API, or already taken).
func TakeReserved(ctx context.Context) (n int64, waited time.Duration) {
	r, _ := ctx.Value(reservationKey{}).(*Reservation)
	if r == nil {
		return 0, 0
	}
	return r.n.Swap(0), r.waited
}

// reserveProduce reserves a Produce frame of size bytes in the produce
// budget, waiting for room.
func (c *Conn) reserveProduce(size int32) (*Reservation, error) {
	b := c.srv.cfg.ProduceBudget
	n := min(int64(size), b.Limit())
	start := time.Now()
	if err := b.Acquire(c.readCtx, n); err != nil {
		return nil, errDraining // the connection is closing or draining
	}
	r := &Reservation{budget: b, waited: time.Since(start)}
	r.n.Store(n)
	return r, nil
}
