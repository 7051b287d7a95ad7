package objectstore

import (
	"errors"
	"fmt"
)

// ErrBucketNotFound is the sentinel that drivers wrap when the bucket itself
// does not exist (as opposed to a key in it, which is ErrNotFound).
var ErrBucketNotFound = errors.New("bucket does not exist")

// ErrAccessDenied is the sentinel that drivers wrap when the store refuses
// the request's credentials: wrong keys, a bad signature, or a policy that
// does not allow the operation.
var ErrAccessDenied = errors.New("access denied")

// ErrInvalidKey is the sentinel that drivers wrap for a key that breaks the
// key rules of the Bucket contract.
var ErrInvalidKey = errors.New("invalid key")

// IsBucketNotFound reports whether err means the bucket does not exist.
func IsBucketNotFound(err error) bool { return errors.Is(err, ErrBucketNotFound) }

// IsAccessDenied reports whether err means the store refused the credentials.
func IsAccessDenied(err error) bool { return errors.Is(err, ErrAccessDenied) }

// ValidateKey checks the key rules every driver enforces: non-empty and not
// beginning with a slash. Drivers with stricter rules (file) add their own.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if key[0] == '/' {
		return fmt.Errorf("%w %q: begins with a slash", ErrInvalidKey, key)
	}
	return nil
}

// ClipRange applies Get's range rules to an object of size bytes: it returns
// the [start, end) positions to read, or an error wrapping ErrInvalidRange
// when off is negative or past the end. off == size is valid and empty.
func ClipRange(size, off, length int64) (start, end int64, err error) {
	if off < 0 || off > size {
		return 0, 0, fmt.Errorf("offset %d outside object of %d bytes: %w", off, size, ErrInvalidRange)
	}
	end = size
	if length >= 0 && length < size-off {
		end = off + length
	}
	return off, end, nil
}
