package file_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/file"
	"github.com/siltstream/silt/objectstore/objectstoretest"
)

func newBucket(t *testing.T) *file.Bucket {
	b, err := file.New(filepath.Join(t.TempDir(), "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBucket(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		objectstoretest.Run(t, func(t *testing.T) objectstore.Bucket { return newBucket(t) })
	})
}

func TestRejectsKeysOutsideTheDirectory(t *testing.T) {
	b := newBucket(t)
	ctx := context.Background()
	for _, key := range []string{"", "/etc/passwd", "../escape", "a/../../escape", "a/./b", "a//b", "a/", "x/.silt-tmp-123"} {
		if err := b.Put(ctx, key, []byte("x")); err == nil {
			t.Errorf("Put(%q) succeeded, want an error", key)
		}
		if _, err := b.Get(ctx, key, 0, -1); err == nil || objectstore.IsNotFound(err) {
			t.Errorf("Get(%q) = %v, want an invalid-key error", key, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(b.Dir()), "escape")); !os.IsNotExist(err) {
		t.Fatalf("a key escaped the bucket directory")
	}
}

func TestTempFilesNeverListed(t *testing.T) {
	b := newBucket(t)
	ctx := context.Background()
	if err := b.Put(ctx, "seg/1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// A crash between create and rename leaves a temp file behind.
	if err := os.WriteFile(filepath.Join(b.Dir(), "seg", ".silt-tmp-999"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := b.List(ctx, "", func(a objectstore.Attrs) error { keys = append(keys, a.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"seg/1"}) {
		t.Fatalf("List = %q, want only seg/1", keys)
	}
}

func TestPutLeavesNoTempFiles(t *testing.T) {
	b := newBucket(t)
	ctx := context.Background()
	for i := range 10 {
		if err := b.Put(ctx, "a/b/c", []byte(strings.Repeat("x", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Put onto a path that is a directory fails and cleans up.
	if err := b.Put(ctx, "a/b", []byte("x")); err == nil {
		t.Fatal("Put over a directory succeeded")
	}
	err := filepath.WalkDir(b.Dir(), func(p string, d os.DirEntry, err error) error {
		if strings.HasPrefix(d.Name(), ".silt-tmp-") {
			t.Errorf("temp file left behind: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDeleteRemovesEmptyDirectories(t *testing.T) {
	b := newBucket(t)
	ctx := context.Background()
	for _, k := range []string{"x/y/z/1", "x/keep"} {
		if err := b.Put(ctx, k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Delete(ctx, "x/y/z/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.Dir(), "x", "y")); !os.IsNotExist(err) {
		t.Errorf("empty directory x/y still exists (err = %v)", err)
	}
	if _, err := os.Stat(filepath.Join(b.Dir(), "x", "keep")); err != nil {
		t.Errorf("sibling object removed: %v", err)
	}
	// Deleting a "key" that is a directory does nothing.
	if err := b.Delete(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Head(ctx, "x/keep"); err != nil {
		t.Fatalf("Delete of a directory removed its contents: %v", err)
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(context.Background(), "k", []byte("durable")); err != nil {
		t.Fatal(err)
	}
	b2, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b2.Get(context.Background(), "k", 0, -1)
	if err != nil || string(got) != "durable" {
		t.Fatalf("Get after reopen = %q, %v", got, err)
	}
}
