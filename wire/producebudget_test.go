package wire

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/semaphore"

	"github.com/siltstream/silt/internal/poll"
)

// testBudget is a Budget counting what is held and who waits.
type testBudget struct {
	sem     *semaphore.Weighted
	limit   int64
	inUse   atomic.Int64
	waiting atomic.Int64
}

func newTestBudget(limit int64) *testBudget {
	return &testBudget{sem: semaphore.NewWeighted(limit), limit: limit}
}

func (b *testBudget) Acquire(ctx context.Context, n int64) error {
	b.waiting.Add(1)
	defer b.waiting.Add(-1)
	if err := b.sem.Acquire(ctx, n); err != nil {
		return err
	}
	b.inUse.Add(n)
	return nil
}

func (b *testBudget) Release(n int64) { b.inUse.Add(-n); b.sem.Release(n) }
func (b *testBudget) Limit() int64    { return b.limit }

// produceOf is a Produce request with acks and one partition of size bytes
// of records.
func produceOf(acks int16, size int) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = make([]byte, size)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// TestProduceBudgetHoldsFramesUntilTaken: with a ProduceBudget, a Produce
// frame reserves its size there before it is read and not in the request
// budget. A handler that takes the reservation keeps it past its reply; a
// frame that does not fit is not read until room is made; a reservation
// not taken is returned once the reply is written.
func TestProduceBudgetHoldsFramesUntilTaken(t *testing.T) {
	pb := newTestBudget(64 << 10)
	var handled atomic.Int32
	taken := make(chan int64, 1)
	reg := NewRegistry()
	reg.Register(0, 3, 9, func(ctx context.Context, c *Conn, req kmsg.Request) Reply {
		handled.Add(1)
		r := req.(*kmsg.ProduceRequest)
		if r.Acks == -1 { // acks=all stands for "hand the bytes to the pipeline"
			n, _ := TakeReserved(ctx)
			taken <- n
			if again, _ := TakeReserved(ctx); again != 0 {
				t.Errorf("a reservation was taken twice: %d bytes the second time", again)
			}
		}
		return Respond(r.ResponseKind())
	})
	srv, addr := startServer(t, Config{ProduceBudget: pb}, reg)

	a, b := dial(t, addr), dial(t, addr)
	frameA := encodeRequest(produceOf(-1, 40<<10), 7, 1, nil)
	write(t, a, frameA)
	if corr, _ := mustReadResponse(t, a); corr != 1 {
		t.Fatalf("first response: correlation id %d", corr)
	}
	n := <-taken
	if want := int64(len(frameA) - 4); n != want {
		t.Fatalf("the handler took %d bytes, the frame is %d", n, want)
	}
	if got := pb.inUse.Load(); got != n {
		t.Fatalf("produce budget in use %d after the reply, want the %d bytes taken", got, n)
	}
	if got, _ := srv.InflightRequestBytes(); got != 0 {
		t.Fatalf("request budget in use %d: a Produce frame reserved there too", got)
	}

	write(t, b, encodeRequest(produceOf(1, 40<<10), 7, 2, nil))
	poll.Until(t, "the second frame waiting for the produce budget", func() bool { return pb.waiting.Load() == 1 })
	if got := handled.Load(); got != 1 {
		t.Fatalf("%d requests handled; the second does not fit", got)
	}
	pb.Release(n) // what the pipeline does once the batches commit
	if corr, _ := mustReadResponse(t, b); corr != 2 {
		t.Fatalf("second response: correlation id %d", corr)
	}
	poll.Until(t, "an untaken reservation returned", func() bool { return pb.inUse.Load() == 0 })
}
