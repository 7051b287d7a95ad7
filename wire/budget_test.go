package wire

import (
	"context"
	"encoding/binary"
	"runtime"
	"strings"
	"testing"

	"github.com/siltstream/silt/internal/poll"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRequestBudgetBoundsReading: frames reserve the shared budget before
// they are read. With the budget held by a request waiting for its reply, a
// second connection's frame is not read (its reader waits), and is served
// once the first reply is written.
func TestRequestBudgetBoundsReading(t *testing.T) {
	h := &testHandlers{release: make(chan struct{})}
	srv, addr := startServer(t, Config{MaxInflightRequestBytes: 100 << 10}, newTestRegistry(h))
	big := func(gen int32) []byte {
		hb := heartbeat("block", gen)
		// A 30 KiB frame decoding into about as much: one fits, not two.
		hb.MemberID = strings.Repeat("m", 30<<10)
		return encodeRequest(hb, 4, gen, nil)
	}
	a, b := dial(t, addr), dial(t, addr)
	write(t, a, big(1))
	poll.Until(t, "first request handled", func() bool { return h.handled.Load() == 1 })
	held, _ := srv.InflightRequestBytes()
	write(t, b, big(2))
	poll.Until(t, "second reader waiting for the budget", func() bool { return srv.budget.waiting.Load() == 1 })
	if got := h.handled.Load(); got != 1 {
		t.Fatalf("handled %d requests; the second does not fit the budget", got)
	}
	if inUse, _ := srv.InflightRequestBytes(); inUse != held || held < 60<<10 || held > 100<<10 {
		t.Fatalf("budget in use %d, held by the first request %d", inUse, held)
	}
	close(h.release)
	if corr, _ := mustReadResponse(t, a); corr != 1 {
		t.Fatalf("first response: correlation id %d", corr)
	}
	if corr, _ := mustReadResponse(t, b); corr != 2 {
		t.Fatalf("second response: correlation id %d", corr)
	}
	poll.Until(t, "budget returned", func() bool { inUse, _ := srv.InflightRequestBytes(); return inUse == 0 })
}

// TestFrameLargerThanBudgetIsServed: one frame over the whole budget (but
// within MaxRequestBytes) takes all of it and is served.
func TestFrameLargerThanBudgetIsServed(t *testing.T) {
	srv, addr := startServer(t, Config{MaxInflightRequestBytes: 64 << 10}, newTestRegistry(&testHandlers{}))
	req := kmsg.NewPtrProduceRequest()
	req.Acks = 1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = make([]byte, 1<<20)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	nc := dial(t, addr)
	write(t, nc, encodeRequest(req, 7, 5, nil))
	if corr, _ := mustReadResponse(t, nc); corr != 5 {
		t.Fatalf("correlation id %d", corr)
	}
	poll.Until(t, "budget returned", func() bool { inUse, _ := srv.InflightRequestBytes(); return inUse == 0 })
}

// hostileFetch is a Fetch v11 request of size bytes whose arrays claim as
// many elements as there are bytes left (kmsg checks no more): the topic
// array, and then the first topic's partition array.
func hostileFetch(size int) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(kmsg.Fetch))
	b = binary.BigEndian.AppendUint16(b, 11)
	b = binary.BigEndian.AppendUint32(b, 1)                     // correlation id
	b = binary.BigEndian.AppendUint16(b, 0)                     // client id ""
	b = append(b, make([]byte, 4+4+4+4+1+4+4)...)               // replica, wait, min, max, isolation, session id, epoch
	b = binary.BigEndian.AppendUint32(b, uint32(size-len(b)-4)) // topics: everything left
	b = binary.BigEndian.AppendUint16(b, 0)                     // topic "" …
	b = binary.BigEndian.AppendUint32(b, uint32(size-len(b)-4)) // … claiming every byte left as a partition
	return append(b, make([]byte, size-len(b))...)
}

// hostileProduce is a Produce v7 request of size bytes made of empty topics
// (a null name and no partitions, 6 bytes each): every claim is backed.
func hostileProduce(size int) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(kmsg.Produce))
	b = binary.BigEndian.AppendUint16(b, 7)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, 0xffff) // null transactional id
	b = append(b, 0, 1, 0, 0, 0x27, 0x10)        // acks 1, timeout
	n := (size - len(b) - 4) / 6
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	for range n {
		b = append(b, 0, 0, 0, 0, 0, 0)
	}
	return b
}

// TestHostileArrayClaimsDoNotAllocate sends request bodies of 4 MiB whose
// arrays claim millions of elements (Fetch), and a Produce claiming one
// topic per byte: each is refused (connection closed) and the process
// allocates little more than the frame. Not parallel: it reads the
// process's allocation counter.
func TestHostileArrayClaimsDoNotAllocate(t *testing.T) {
	const size = 4 << 20
	fetch, produce := hostileFetch(size), hostileProduce(size)

	// What kmsg alone allocates decoding these bodies.
	for name, frame := range map[string][]byte{"fetch": fetch, "produce": produce} {
		req := kmsg.RequestForKey(int16(binary.BigEndian.Uint16(frame)))
		req.SetVersion(int16(binary.BigEndian.Uint16(frame[2:])))
		allocated := measureAlloc(func() { _ = req.ReadFrom(frame[10:]) })
		t.Logf("kmsg decoding the hostile %s body of %d MiB allocates %d MiB", name, size>>20, allocated>>20)
	}

	reg := newTestRegistry(&testHandlers{})
	reg.Register(int16(kmsg.Fetch), 4, 12, func(_ context.Context, _ *Conn, req kmsg.Request) Reply {
		return Respond(req.ResponseKind())
	})
	_, addr := startServer(t, Config{}, reg)
	for name, frame := range map[string][]byte{"fetch": fetch, "produce": produce} {
		framed := binary.BigEndian.AppendUint32(nil, uint32(len(frame)))
		framed = append(framed, frame...)
		nc := dial(t, addr)
		allocated := measureAlloc(func() {
			_, _ = nc.Write(framed) // the server may close before reading it all
			expectClosed(t, nc)
		})
		t.Logf("the server refusing the hostile %s body of %d MiB allocated %d MiB", name, size>>20, allocated>>20)
		if allocated > 3*size {
			t.Errorf("hostile %s body of %d MiB: the server allocated %d MiB", name, size>>20, allocated>>20)
		}
	}
}

func measureAlloc(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestLargeEncodeBufferNotKept: a connection reuses its encode buffer for
// small responses only.
func TestLargeEncodeBufferNotKept(t *testing.T) {
	if b := reusable(make([]byte, 10, 4096)); cap(b) != 4096 {
		t.Fatalf("a small buffer was dropped")
	}
	if b := reusable(make([]byte, 0, 55<<20)); b != nil {
		t.Fatalf("a %d MiB buffer was kept", cap(b)>>20)
	}
}
