package jobs

import (
	"fmt"
	"testing"
)

func TestOffsetMapBoundedAndLatest(t *testing.T) {
	m := newOffsetMap(100 * offsetMapSlotBytes)
	if m.maxSize != 80 || len(m.offsets) != 100 {
		t.Fatalf("%d slots, %d keys at most; want 100 and 80", len(m.offsets), m.maxSize)
	}
	for i := 0; i < 80; i++ {
		if !m.put(fmt.Appendf(nil, "k%d", i), int64(i)) {
			t.Fatalf("key %d refused", i)
		}
	}
	if m.put([]byte("new"), 100) || m.free() != 0 {
		t.Fatal("a full map took a new key")
	}
	if !m.put([]byte("k3"), 200) || m.get([]byte("k3")) != 200 || m.get([]byte("k4")) != 4 || m.get([]byte("new")) != -1 {
		t.Fatal("a full map must update known keys and answer lookups")
	}
	m.reset()
	if m.get([]byte("k3")) != -1 || m.free() != 80 {
		t.Fatal("reset left keys")
	}
}
