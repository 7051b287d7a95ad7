package wire

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// Memory for requests. Every request frame reserves room in one budget
// shared by all connections (Config.MaxInflightRequestBytes) before its
// body is read, and gives it back once its response is written (or it is
// answered with no response, or its connection closes). A connection whose
// next frame does not fit stops reading until earlier requests finish, so
// the bytes of frames read but not answered never exceed the budget — except
// that a single frame larger than the whole budget (but within
// MaxRequestBytes) is served alone, holding all of it.
//
// A Produce request holds its reservation until its batches are committed
// and answered, while the write pipeline also counts them against
// buffer.bytes. The two bounds do not wait on each other: the pipeline
// frees its buffer by committing flushes, which needs no request budget,
// so a produce waiting for buffer space while holding its frame's
// reservation always gets it. Frames in the pipeline count in both, so
// produced bytes in memory stay within the smaller of the two.

// budget is the shared in-flight request budget.
type budget struct {
	sem     *semaphore.Weighted
	limit   int64
	inUse   atomic.Int64
	waiting atomic.Int64 // readers waiting for room
}

func newBudget(limit int64) *budget {
	return &budget{sem: semaphore.NewWeighted(limit), limit: limit}
}

// acquire waits for n bytes (at most the whole budget) or ctx.
func (b *budget) acquire(ctx context.Context, n int64) error {
	if !b.sem.TryAcquire(n) {
		b.waiting.Add(1)
		err := b.sem.Acquire(ctx, n)
		b.waiting.Add(-1)
		if err != nil {
			return err
		}
	}
	b.inUse.Add(n)
	return nil
}

func (b *budget) release(n int64) {
	if n > 0 {
		b.inUse.Add(-n)
		b.sem.Release(n)
	}
}

// admission is what reading a frame of size bytes costs: the reservation
// to take before reading its body.
func (s *Server) admission(_ int16, size int32) (int64, error) {
	return min(int64(size), s.budget.limit), nil
}
