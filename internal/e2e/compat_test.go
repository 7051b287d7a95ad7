package e2e

import (
	"fmt"
	"testing"
	"time"
)

// Compatibility tests: popular Kafka clients, unchanged, against `silt dev`.
// Each test runs its own agent with debug logs, dumped when the test fails,
// so a protocol mismatch shows which request the agent saw and what it
// answered.

// startCompatDev runs `silt dev` with auto topic creation on a fresh data
// directory and returns its Kafka address.
func startCompatDev(t *testing.T) string {
	t.Helper()
	addr := freeAddr(t)
	p := startSilt(t, addr, nil, "dev", "--data-dir", t.TempDir(), "--log-level", "debug")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("silt logs:\n%s", p.logs)
		}
	})
	return addr
}

// within runs fn and fails the test if it has not returned after d. A client
// that hangs on an unexpected answer is an incompatibility to report, never a
// test that runs until the global timeout. On timeout the goroutine is
// abandoned; the agent is killed at cleanup, which unblocks it.
func within(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s: no answer within %v", what, d)
	}
}

// compatKey and compatValue name record i of a partition so a reader can
// check each record it gets is the one written at that offset.
func compatKey(partition int32, i int) []byte {
	return fmt.Appendf(nil, "key-p%d-%04d", partition, i)
}

func compatValue(partition int32, i int) []byte {
	return fmt.Appendf(nil, "value-p%d-%04d: the quick brown fox jumps over the lazy dog", partition, i)
}
