package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/siltstream/silt/objectstore"
)

// tmpPrefix starts the name of every file Put has not yet renamed into place.
const tmpPrefix = ".silt-tmp-"

// Bucket is an objectstore.Bucket stored under one local directory.
type Bucket struct {
	root string
}

var _ objectstore.Bucket = (*Bucket)(nil)

// New returns a bucket rooted at dir, creating dir if it does not exist.
func New(dir string) (*Bucket, error) {
	if dir == "" {
		return nil, errors.New("file bucket: directory is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("file bucket: resolve %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("file bucket: create %s: %w", abs, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("file bucket: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("file bucket: %s is not a directory", abs)
	}
	return &Bucket{root: abs}, nil
}

// Dir returns the bucket's root directory.
func (b *Bucket) Dir() string { return b.root }

// path validates key and returns its file path.
func (b *Bucket) path(key string) (string, error) {
	if err := objectstore.ValidateKey(key); err != nil {
		return "", err
	}
	for _, elem := range strings.Split(key, "/") {
		switch {
		case elem == "":
			return "", fmt.Errorf("%w %q: empty path element", objectstore.ErrInvalidKey, key)
		case elem == "." || elem == "..":
			return "", fmt.Errorf("%w %q: %q path element", objectstore.ErrInvalidKey, key, elem)
		case strings.HasPrefix(elem, tmpPrefix):
			return "", fmt.Errorf("%w %q: elements starting with %q are reserved for temporary files", objectstore.ErrInvalidKey, key, tmpPrefix)
		case strings.IndexByte(elem, 0) >= 0:
			return "", fmt.Errorf("%w %q: NUL byte", objectstore.ErrInvalidKey, key)
		}
	}
	return filepath.Join(b.root, filepath.FromSlash(key)), nil
}

// isMissing reports whether err from opening a path means there is no such
// object: the path is absent, or one of its parents is a regular file.
func isMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Put writes data to a temporary file beside the key's path, fsyncs it,
// renames it into place and fsyncs the directory.
func (b *Bucket) Put(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.path(key)
	if err != nil {
		return err
	}
	// A concurrent Delete may remove a directory we just created while it
	// is empty; try again a few times before giving up.
	for attempt := 0; ; attempt++ {
		err = b.put(p, data)
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt == 5 {
			break
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func (b *Bucket) put(p string, data []byte) (err error) {
	dir := filepath.Dir(p)
	if err := b.mkdirAll(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err = os.Rename(tmp, p); err != nil {
		return err
	}
	return syncDir(dir)
}

// mkdirAll creates dir and its missing parents below the root, fsyncing
// each parent so the new directory entries survive a crash.
func (b *Bucket) mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is an object, not a directory", dir)
		}
		return nil
	}
	if dir == b.root {
		return fmt.Errorf("bucket directory %s is gone", b.root)
	}
	parent := filepath.Dir(dir)
	if err := b.mkdirAll(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// open opens key's file, classifying a missing key and refusing directories.
func (b *Bucket) open(key string) (*os.File, os.FileInfo, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if isMissing(err) {
			return nil, nil, objectstore.ErrNotFound
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, objectstore.ErrNotFound
	}
	return f, fi, nil
}

// Get reads the range from the file. The file handle keeps the version that
// was current when it was opened, so a concurrent Put cannot tear the read.
func (b *Bucket) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, fi, err := b.open(key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer f.Close()
	start, end, err := objectstore.ClipRange(fi.Size(), off, length)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	buf := make([]byte, end-start)
	if _, err := f.ReadAt(buf, start); err != nil && !(errors.Is(err, io.EOF) && len(buf) == 0) {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return buf, nil
}

// Head stats key's file.
func (b *Bucket) Head(ctx context.Context, key string) (objectstore.Attrs, error) {
	if err := ctx.Err(); err != nil {
		return objectstore.Attrs{}, err
	}
	p, err := b.path(key)
	if err != nil {
		return objectstore.Attrs{}, err
	}
	fi, err := os.Stat(p)
	if err == nil && !fi.Mode().IsRegular() {
		err = objectstore.ErrNotFound
	} else if err != nil && isMissing(err) {
		err = objectstore.ErrNotFound
	}
	if err != nil {
		return objectstore.Attrs{}, fmt.Errorf("head %s: %w", key, err)
	}
	return objectstore.Attrs{Key: key, Size: fi.Size(), LastModified: fi.ModTime()}, nil
}

// Delete removes key's file and then any directories that became empty.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.path(key)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		if isMissing(err) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if fi.IsDir() {
		return nil // a directory is never an object
	}
	if err := os.Remove(p); err != nil && !isMissing(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	dir := filepath.Dir(p)
	if err := syncDir(dir); err != nil && !isMissing(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	// Best effort: a directory that is not empty (or was just reused by a
	// concurrent Put) simply stays.
	for dir != b.root {
		if os.Remove(dir) != nil {
			break
		}
		dir = filepath.Dir(dir)
	}
	return nil
}

// List walks the directory tree in lexical key order. Within a directory,
// a subdirectory d sorts as "d/", so that every key below it comes exactly
// where "d/..." belongs among its siblings.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(objectstore.Attrs) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Start at the deepest directory the prefix names entirely.
	start := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i+1]
	}
	err := b.walk(ctx, start, prefix, fn)
	if err != nil && isMissing(err) {
		return nil
	}
	return err
}

type entry struct {
	sortKey string // name, plus "/" for a directory
	name    string
	dir     bool
}

// walk lists the directory holding keys that start with dirKey ("" or
// ending in "/").
func (b *Bucket) walk(ctx context.Context, dirKey, prefix string, fn func(objectstore.Attrs) error) error {
	des, err := os.ReadDir(filepath.Join(b.root, filepath.FromSlash(dirKey)))
	if err != nil {
		if isMissing(err) && dirKey != "" {
			return nil // removed by a concurrent Delete, or never there
		}
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	entries := make([]entry, 0, len(des))
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			continue
		}
		e := entry{sortKey: name, name: name, dir: de.IsDir()}
		if e.dir {
			e.sortKey += "/"
		} else if !de.Type().IsRegular() {
			continue
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(x, y entry) int { return strings.Compare(x.sortKey, y.sortKey) })
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		key := dirKey + e.sortKey
		if e.dir {
			if strings.HasPrefix(key, prefix) || strings.HasPrefix(prefix, key) {
				if err := b.walk(ctx, key, prefix, fn); err != nil {
					return err
				}
			}
			continue
		}
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		fi, err := os.Stat(filepath.Join(b.root, filepath.FromSlash(key)))
		if err != nil {
			if isMissing(err) {
				continue // deleted while we listed
			}
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		if err := fn(objectstore.Attrs{Key: key, Size: fi.Size(), LastModified: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Close does nothing; the files stay.
func (b *Bucket) Close() error { return nil }
