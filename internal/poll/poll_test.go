package poll

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB whose Fatalf records the message and ends the
// goroutine, as testing's does.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with a recorder on a goroutine of its own and returns what
// it failed with ("" if it did not).
func run(f func(t testing.TB)) string {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msg
}

func TestWithinSayingTellsWhatItSaw(t *testing.T) {
	never := func() bool { return false }
	msg := run(func(t testing.TB) { WithinSaying(t, "the answer", 0, never, func() string { return "41" }) })
	if !strings.Contains(msg, "waiting for the answer; last seen: 41") {
		t.Fatalf("failure %q does not say what was seen", msg)
	}
	if msg := run(func(t testing.TB) { Within(t, "the answer", 0, never) }); !strings.HasSuffix(msg, "waiting for the answer") {
		t.Fatalf("failure without seen = %q", msg)
	}
	calls := 0
	soon := func() bool { calls++; return calls == 3 }
	if msg := run(func(t testing.TB) { Until(t, "the third call", soon) }); msg != "" || calls != 3 {
		t.Fatalf("a condition that comes true failed with %q after %d calls", msg, calls)
	}
}
