package objectstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/siltstream/silt/objectstore"
)

// Run runs the acceptance suite. newBucket must return an empty bucket that
// no other subtest uses; Run closes it when the subtest ends.
func Run(t *testing.T, newBucket func(t *testing.T) objectstore.Bucket) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b objectstore.Bucket)
	}{
		{"PutGet", testPutGet},
		{"Overwrite", testOverwrite},
		{"GetRange", testGetRange},
		{"Head", testHead},
		{"NotFound", testNotFound},
		{"Delete", testDelete},
		{"List", testList},
		{"ListStopsOnError", testListStopsOnError},
		{"EmptyObject", testEmptyObject},
		{"LargeObject", testLargeObject},
		{"KeyCharacters", testKeyCharacters},
		{"InvalidKeys", testInvalidKeys},
		{"NoAliasing", testNoAliasing},
		{"AtomicPut", testAtomicPut},
		{"ContextCancelled", testContextCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBucket(t)
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, b)
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, b objectstore.Bucket, key string, data []byte) {
	t.Helper()
	if err := b.Put(ctxFor(t), key, data); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

func mustGet(t *testing.T, b objectstore.Bucket, key string, off, length int64) []byte {
	t.Helper()
	got, err := b.Get(ctxFor(t), key, off, length)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): %v", key, off, length, err)
	}
	return got
}

// pattern returns n bytes that differ at every position mod 251, so a
// shifted or truncated read does not compare equal by accident.
func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i%251) ^ seed
	}
	return p
}

func testPutGet(t *testing.T, b objectstore.Bucket) {
	want := []byte("hello, segment")
	mustPut(t, b, "segments/0001", want)
	if got := mustGet(t, b, "segments/0001", 0, -1); !bytes.Equal(got, want) {
		t.Fatalf("Get = %q, want %q", got, want)
	}
}

func testOverwrite(t *testing.T, b objectstore.Bucket) {
	mustPut(t, b, "k", []byte("a much longer first version"))
	mustPut(t, b, "k", []byte("short"))
	if got := mustGet(t, b, "k", 0, -1); string(got) != "short" {
		t.Fatalf("Get after overwrite = %q, want %q", got, "short")
	}
	attrs, err := b.Head(ctxFor(t), "k")
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	if attrs.Size != 5 {
		t.Fatalf("Head size after overwrite = %d, want 5", attrs.Size)
	}
}

func testGetRange(t *testing.T, b objectstore.Bucket) {
	data := pattern(1000, 7)
	mustPut(t, b, "r", data)
	for _, tc := range []struct {
		name        string
		off, length int64
		want        []byte
	}{
		{"whole", 0, -1, data},
		{"whole exact length", 0, 1000, data},
		{"middle", 100, 200, data[100:300]},
		{"from offset to end", 990, -1, data[990:]},
		{"clipped past end", 900, 500, data[900:]},
		{"last byte", 999, 1, data[999:]},
		{"zero length", 10, 0, nil},
		{"off equals size", 1000, -1, nil},
		{"off equals size with length", 1000, 10, nil},
	} {
		got, err := b.Get(ctxFor(t), "r", tc.off, tc.length)
		if err != nil {
			t.Errorf("%s: Get(off=%d, length=%d): %v", tc.name, tc.off, tc.length, err)
			continue
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s: Get(off=%d, length=%d) returned %d bytes, want %d (content equal: %v)",
				tc.name, tc.off, tc.length, len(got), len(tc.want), bytes.Equal(got, tc.want))
		}
	}
	for _, off := range []int64{1001, 5000} {
		_, err := b.Get(ctxFor(t), "r", off, -1)
		if !objectstore.IsInvalidRange(err) {
			t.Errorf("Get(off=%d) past the end of a 1000-byte object: err = %v, want IsInvalidRange", off, err)
		}
		_, err = b.Get(ctxFor(t), "r", off, 10)
		if !objectstore.IsInvalidRange(err) {
			t.Errorf("Get(off=%d, length=10) past the end of a 1000-byte object: err = %v, want IsInvalidRange", off, err)
		}
	}
}

func testHead(t *testing.T, b objectstore.Bucket) {
	before := time.Now().Add(-time.Hour) // generous: server clocks drift
	mustPut(t, b, "h/obj", pattern(1234, 1))
	attrs, err := b.Head(ctxFor(t), "h/obj")
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	if attrs.Key != "h/obj" || attrs.Size != 1234 {
		t.Fatalf("Head = %+v, want key h/obj size 1234", attrs)
	}
	if attrs.LastModified.Before(before) || attrs.LastModified.After(time.Now().Add(time.Hour)) {
		t.Fatalf("Head LastModified = %v, want about now", attrs.LastModified)
	}
}

func testNotFound(t *testing.T, b objectstore.Bucket) {
	ctx := ctxFor(t)
	if _, err := b.Get(ctx, "missing/key", 0, -1); !objectstore.IsNotFound(err) {
		t.Errorf("Get missing key: err = %v, want IsNotFound", err)
	}
	if _, err := b.Get(ctx, "missing/key", 10, 5); !objectstore.IsNotFound(err) {
		t.Errorf("ranged Get missing key: err = %v, want IsNotFound", err)
	}
	if _, err := b.Get(ctx, "missing/key", 0, 0); !objectstore.IsNotFound(err) {
		t.Errorf("zero-length Get missing key: err = %v, want IsNotFound", err)
	}
	if _, err := b.Head(ctx, "missing/key"); !objectstore.IsNotFound(err) {
		t.Errorf("Head missing key: err = %v, want IsNotFound", err)
	}
	// A key that is a prefix of existing keys is still missing.
	mustPut(t, b, "dir/child", []byte("x"))
	if _, err := b.Get(ctx, "dir", 0, -1); !objectstore.IsNotFound(err) {
		t.Errorf("Get of a key that is only a prefix: err = %v, want IsNotFound", err)
	}
	if _, err := b.Head(ctx, "dir"); !objectstore.IsNotFound(err) {
		t.Errorf("Head of a key that is only a prefix: err = %v, want IsNotFound", err)
	}
}

func testDelete(t *testing.T, b objectstore.Bucket) {
	ctx := ctxFor(t)
	mustPut(t, b, "d/1", []byte("one"))
	if err := b.Delete(ctx, "d/1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := b.Get(ctx, "d/1", 0, -1); !objectstore.IsNotFound(err) {
		t.Fatalf("Get after Delete: err = %v, want IsNotFound", err)
	}
	if err := b.Delete(ctx, "d/1"); err != nil {
		t.Fatalf("second Delete of the same key: %v, want nil", err)
	}
	if err := b.Delete(ctx, "never/existed"); err != nil {
		t.Fatalf("Delete of a missing key: %v, want nil", err)
	}
	var keys []string
	if err := b.List(ctx, "", func(a objectstore.Attrs) error { keys = append(keys, a.Key); return nil }); err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(keys) != 0 {
		t.Fatalf("List after deleting everything = %q, want none", keys)
	}
}

func listKeys(t *testing.T, b objectstore.Bucket, prefix string) ([]string, map[string]int64) {
	t.Helper()
	var keys []string
	sizes := map[string]int64{}
	err := b.List(ctxFor(t), prefix, func(a objectstore.Attrs) error {
		keys = append(keys, a.Key)
		sizes[a.Key] = a.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys, sizes
}

func testList(t *testing.T, b objectstore.Bucket) {
	// Chosen so that lexical order differs from a depth-first directory
	// walk: '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f).
	keys := []string{
		"a/b/c", "a/b-x", "a/b.y", "a/ba", "a/b/d/e", "a0", "a-", "b", "seg/000010", "seg/000002",
	}
	for i, k := range keys {
		mustPut(t, b, k, pattern(i+1, 0))
	}
	all := slices.Clone(keys)
	slices.Sort(all)
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"a/b", []string{"a/b-x", "a/b.y", "a/b/c", "a/b/d/e", "a/ba"}},
		{"a/b/", []string{"a/b/c", "a/b/d/e"}},
		{"a", []string{"a-", "a/b-x", "a/b.y", "a/b/c", "a/b/d/e", "a/ba", "a0"}},
		{"seg/", []string{"seg/000002", "seg/000010"}},
		{"b", []string{"b"}},
		{"nothing", nil},
		{"a/b/c/", nil},
	} {
		got, sizes := listKeys(t, b, tc.prefix)
		if !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
		for _, k := range got {
			if want := int64(slices.Index(keys, k) + 1); sizes[k] != want {
				t.Errorf("List(%q): size of %q = %d, want %d", tc.prefix, k, sizes[k], want)
			}
		}
	}
}

func testListStopsOnError(t *testing.T, b objectstore.Bucket) {
	for i := range 5 {
		mustPut(t, b, fmt.Sprintf("l/%d", i), []byte("x"))
	}
	stop := errors.New("stop here")
	var seen []string
	err := b.List(ctxFor(t), "l/", func(a objectstore.Attrs) error {
		seen = append(seen, a.Key)
		if len(seen) == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("List returned %v, want the callback's error", err)
	}
	if !slices.Equal(seen, []string{"l/0", "l/1"}) {
		t.Fatalf("List called fn for %q after it failed, want [l/0 l/1]", seen)
	}
}

func testEmptyObject(t *testing.T, b objectstore.Bucket) {
	ctx := ctxFor(t)
	mustPut(t, b, "empty", nil)
	mustPut(t, b, "empty2", []byte{})
	for _, k := range []string{"empty", "empty2"} {
		if got := mustGet(t, b, k, 0, -1); len(got) != 0 {
			t.Errorf("Get(%s) = %d bytes, want 0", k, len(got))
		}
		if got := mustGet(t, b, k, 0, 10); len(got) != 0 {
			t.Errorf("Get(%s, 0, 10) = %d bytes, want 0", k, len(got))
		}
		if got := mustGet(t, b, k, 0, 0); len(got) != 0 {
			t.Errorf("Get(%s, 0, 0) = %d bytes, want 0", k, len(got))
		}
		if _, err := b.Get(ctx, k, 1, -1); !objectstore.IsInvalidRange(err) {
			t.Errorf("Get(%s, 1, -1): err = %v, want IsInvalidRange", k, err)
		}
		attrs, err := b.Head(ctx, k)
		if err != nil || attrs.Size != 0 {
			t.Errorf("Head(%s) = %+v, %v; want size 0", k, attrs, err)
		}
	}
	got, _ := listKeys(t, b, "empty")
	if !slices.Equal(got, []string{"empty", "empty2"}) {
		t.Errorf("List(empty) = %q, want both empty objects", got)
	}
}

func testLargeObject(t *testing.T, b objectstore.Bucket) {
	const size = 5 << 20
	data := pattern(size, 42)
	mustPut(t, b, "large", data)
	if got := mustGet(t, b, "large", 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("Get(large) returned %d bytes that differ from the %d put", len(got), size)
	}
	off := int64(size/2 + 3)
	if got := mustGet(t, b, "large", off, 1<<20); !bytes.Equal(got, data[off:off+1<<20]) {
		t.Fatalf("ranged Get in the middle of large object returned wrong bytes (%d)", len(got))
	}
	if got := mustGet(t, b, "large", size-10, 100); !bytes.Equal(got, data[size-10:]) {
		t.Fatalf("ranged Get at the end of large object returned wrong bytes (%d)", len(got))
	}
	attrs, err := b.Head(ctxFor(t), "large")
	if err != nil || attrs.Size != size {
		t.Fatalf("Head(large) = %+v, %v; want size %d", attrs, err, size)
	}
}

func testKeyCharacters(t *testing.T, b objectstore.Bucket) {
	keys := []string{
		"with space/and+plus",
		"percent%20not-decoded",
		"unicode/ü/日本",
		"query?like=this&x",
		"hash#frag",
		"trailing-dot.",
		"deep/a/b/c/d/e/f/g",
	}
	for i, k := range keys {
		mustPut(t, b, k, []byte{byte(i)})
	}
	for i, k := range keys {
		if got := mustGet(t, b, k, 0, -1); !bytes.Equal(got, []byte{byte(i)}) {
			t.Errorf("Get(%q) = %v, want [%d]", k, got, i)
		}
	}
	got, _ := listKeys(t, b, "")
	want := slices.Clone(keys)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
}

func testInvalidKeys(t *testing.T, b objectstore.Bucket) {
	for _, k := range []string{"", "/abs"} {
		if err := b.Put(ctxFor(t), k, []byte("x")); err == nil {
			t.Errorf("Put(%q) succeeded, want an error", k)
		}
	}
}

func testNoAliasing(t *testing.T, b objectstore.Bucket) {
	buf := []byte("original")
	mustPut(t, b, "alias", buf)
	copy(buf, "mutated!")
	got := mustGet(t, b, "alias", 0, -1)
	if string(got) != "original" {
		t.Fatalf("bucket retained the caller's buffer: Get = %q", got)
	}
	copy(got, "mutated!")
	if again := mustGet(t, b, "alias", 0, -1); string(again) != "original" {
		t.Fatalf("Get returned the bucket's own buffer: second Get = %q", again)
	}
}

// testAtomicPut overwrites one key with objects of different sizes and
// contents while readers check that every Get returns exactly one of them.
func testAtomicPut(t *testing.T, b objectstore.Bucket) {
	versions := [][]byte{
		bytes.Repeat([]byte{'a'}, 256<<10),
		bytes.Repeat([]byte{'b'}, 64<<10+3),
		bytes.Repeat([]byte{'c'}, 512<<10+1),
	}
	mustPut(t, b, "atomic", versions[0])
	ctx := ctxFor(t)
	const writes = 20
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 16)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range writes {
				if err := b.Put(ctx, "atomic", versions[(i+w)%len(versions)]); err != nil {
					errs <- fmt.Errorf("Put: %w", err)
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := b.Get(ctx, "atomic", 0, -1)
				if err != nil {
					errs <- fmt.Errorf("Get during concurrent Puts: %w", err)
					return
				}
				if !slices.ContainsFunc(versions, func(v []byte) bool { return bytes.Equal(v, got) }) {
					errs <- fmt.Errorf("Get during concurrent Puts saw a partial or mixed object (%d bytes)", len(got))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testContextCancelled(t *testing.T, b objectstore.Bucket) {
	mustPut(t, b, "c/1", []byte("x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v, want context.Canceled", op, err)
		}
	}
	check("Put", b.Put(ctx, "c/2", []byte("y")))
	_, err := b.Get(ctx, "c/1", 0, -1)
	check("Get", err)
	_, err = b.Head(ctx, "c/1")
	check("Head", err)
	check("Delete", b.Delete(ctx, "c/1"))
	check("List", b.List(ctx, "", func(objectstore.Attrs) error { return nil }))
	// Nothing happened.
	if _, err := b.Head(ctxFor(t), "c/2"); !objectstore.IsNotFound(err) {
		t.Errorf("Put with a cancelled context stored the object (Head err = %v)", err)
	}
	if _, err := b.Head(ctxFor(t), "c/1"); err != nil {
		t.Errorf("Delete with a cancelled context removed the object (Head err = %v)", err)
	}
}
