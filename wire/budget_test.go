package wire

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRequestBudgetBoundsReading: frames reserve the shared budget before
// they are read. With the budget held by a request waiting for its reply, a
// second connection's frame is not read (its reader waits), and is served
// once the first reply is written.
func TestRequestBudgetBoundsReading(t *testing.T) {
	h := &testHandlers{release: make(chan struct{})}
	srv, addr := startServer(t, Config{MaxInflightRequestBytes: 48 << 10}, newTestRegistry(h))
	big := func(gen int32) []byte {
		hb := heartbeat("block", gen)
		hb.MemberID = strings.Repeat("m", 30<<10) // a 30 KiB frame: one fits, not two
		return encodeRequest(hb, 4, gen, nil)
	}
	a, b := dial(t, addr), dial(t, addr)
	write(t, a, big(1))
	waitFor(t, "first request handled", func() bool { return h.handled.Load() == 1 })
	held, _ := srv.InflightRequestBytes()
	write(t, b, big(2))
	waitFor(t, "second reader waiting for the budget", func() bool { return srv.budget.waiting.Load() == 1 })
	if got := h.handled.Load(); got != 1 {
		t.Fatalf("handled %d requests; the second does not fit the budget", got)
	}
	if inUse, _ := srv.InflightRequestBytes(); inUse != held || held < 30<<10 || held > 48<<10 {
		t.Fatalf("budget in use %d, held by the first request %d", inUse, held)
	}
	close(h.release)
	if corr, _ := mustReadResponse(t, a); corr != 1 {
		t.Fatalf("first response: correlation id %d", corr)
	}
	if corr, _ := mustReadResponse(t, b); corr != 2 {
		t.Fatalf("second response: correlation id %d", corr)
	}
	waitFor(t, "budget returned", func() bool { inUse, _ := srv.InflightRequestBytes(); return inUse == 0 })
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
	waitFor(t, "budget returned", func() bool { inUse, _ := srv.InflightRequestBytes(); return inUse == 0 })
}
