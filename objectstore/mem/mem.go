package mem

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/siltstream/silt/objectstore"
)

// Bucket is an objectstore.Bucket held in memory.
type Bucket struct {
	mu      sync.RWMutex
	objects map[string]object
}

type object struct {
	data    []byte // never modified after Put; replaced whole
	modTime time.Time
}

var _ objectstore.Bucket = (*Bucket)(nil)

// New returns an empty bucket.
func New() *Bucket {
	return &Bucket{objects: make(map[string]object)}
}

// Put stores a copy of data under key.
func (b *Bucket) Put(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := objectstore.ValidateKey(key); err != nil {
		return err
	}
	obj := object{data: slices.Clone(data), modTime: time.Now()}
	if obj.data == nil {
		obj.data = []byte{}
	}
	b.mu.Lock()
	b.objects[key] = obj
	b.mu.Unlock()
	return nil
}

// Get returns a copy of the requested range.
func (b *Bucket) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := objectstore.ValidateKey(key); err != nil {
		return nil, err
	}
	b.mu.RLock()
	obj, ok := b.objects[key]
	b.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, objectstore.ErrNotFound)
	}
	start, end, err := objectstore.ClipRange(int64(len(obj.data)), off, length)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return slices.Clone(obj.data[start:end:end]), nil
}

// Head returns key's attributes.
func (b *Bucket) Head(ctx context.Context, key string) (objectstore.Attrs, error) {
	if err := ctx.Err(); err != nil {
		return objectstore.Attrs{}, err
	}
	if err := objectstore.ValidateKey(key); err != nil {
		return objectstore.Attrs{}, err
	}
	b.mu.RLock()
	obj, ok := b.objects[key]
	b.mu.RUnlock()
	if !ok {
		return objectstore.Attrs{}, fmt.Errorf("head %s: %w", key, objectstore.ErrNotFound)
	}
	return objectstore.Attrs{Key: key, Size: int64(len(obj.data)), LastModified: obj.modTime}, nil
}

// Delete removes key; a missing key is not an error.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := objectstore.ValidateKey(key); err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.objects, key)
	b.mu.Unlock()
	return nil
}

// List calls fn for each key with prefix, in lexical order. It works on a
// snapshot taken at the start, so fn may call back into the bucket.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(objectstore.Attrs) error) error {
	b.mu.RLock()
	attrs := make([]objectstore.Attrs, 0, len(b.objects))
	for k, obj := range b.objects {
		if strings.HasPrefix(k, prefix) {
			attrs = append(attrs, objectstore.Attrs{Key: k, Size: int64(len(obj.data)), LastModified: obj.modTime})
		}
	}
	b.mu.RUnlock()
	slices.SortFunc(attrs, func(a, b objectstore.Attrs) int { return strings.Compare(a.Key, b.Key) })
	for _, a := range attrs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Close does nothing; the contents stay readable.
func (b *Bucket) Close() error { return nil }
