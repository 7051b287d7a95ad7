package objectstore

import (
	"context"
	"errors"
	"time"
)

// Bucket is the narrow view of an object store that Silt needs. Every driver
// (s3, file, mem) and every decorator implements it, and all of them pass the
// acceptance suite in objectstoretest.
//
// Contract, for all implementations:
//   - Keys are non-empty, slash-separated, and never begin with a slash.
//   - Put is atomic: a concurrent or later Get sees either the whole previous
//     object or the whole new one, never a prefix. Put replaces an existing key.
//   - Errors for a missing key satisfy IsNotFound; callers never inspect
//     SDK-specific errors.
//   - Every call honours ctx cancellation and returns ctx.Err() (possibly
//     wrapped) when cancelled.
//   - Implementations are safe for concurrent use.
type Bucket interface {
	// Put stores data under key, atomically. The bucket does not retain data
	// after Put returns.
	Put(ctx context.Context, key string, data []byte) error

	// Get returns length bytes of the object starting at off. A negative
	// length reads to the end of the object. A range that runs past the end
	// is clipped to the object; off beyond the end of the object (off > size)
	// is an error satisfying IsInvalidRange. A missing key satisfies IsNotFound.
	Get(ctx context.Context, key string, off, length int64) ([]byte, error)

	// Head returns the object's attributes. A missing key satisfies IsNotFound.
	Head(ctx context.Context, key string) (Attrs, error)

	// Delete removes key. Deleting a missing key is not an error (as in S3),
	// so janitors can retry deletes freely.
	Delete(ctx context.Context, key string) error

	// List calls fn for every object whose key starts with prefix, in
	// lexical key order. If fn returns an error, List stops and returns it.
	List(ctx context.Context, prefix string, fn func(Attrs) error) error

	// Close releases the driver's resources.
	Close() error
}

// Attrs describes one stored object.
type Attrs struct {
	Key          string
	Size         int64
	LastModified time.Time
}

// ErrNotFound is the sentinel that drivers wrap for a missing key.
var ErrNotFound = errors.New("object not found")

// ErrInvalidRange is the sentinel that drivers wrap when Get starts past the
// end of an object.
var ErrInvalidRange = errors.New("invalid range")

// IsNotFound reports whether err means the key does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsInvalidRange reports whether err means a Get started past the object's end.
func IsInvalidRange(err error) bool { return errors.Is(err, ErrInvalidRange) }
