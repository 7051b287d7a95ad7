// Package poll waits in tests for a condition that another goroutine or
// process makes true. The condition is the synchronisation: the interval
// only bounds how often it is asked, and the deadline is how long a
// healthy system could possibly need (generous, so a busy machine does not
// turn it into a flake), after which the test fails saying what it waited
// for.
package poll

import (
	"testing"
	"time"
)

// interval is how often the condition is asked.
const interval = 20 * time.Millisecond

// DefaultTimeout is Until's deadline: far beyond what anything a test
// waits for takes on a healthy machine.
const DefaultTimeout = 30 * time.Second

// Until asks cond until it holds, failing t after DefaultTimeout.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Within(t, what, DefaultTimeout, cond)
}

// Within asks cond until it holds, failing t if timeout passes first.
func Within(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	WithinSaying(t, what, timeout, cond, nil)
}

// WithinSaying is Within for a condition that can say what it saw: if
// timeout passes first, the failure gives seen's answer (if seen is not
// nil), so a test that fails once in a hundred runs says why.
func WithinSaying(t testing.TB, what string, timeout time.Duration, cond func() bool, seen func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			if seen != nil {
				t.Fatalf("timed out after %v waiting for %s; last seen: %s", timeout, what, seen())
			}
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}
