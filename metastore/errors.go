package metastore

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrTopicExists: CreateTopic with a name that is taken.
	ErrTopicExists = errors.New("topic already exists")
	// ErrUnknownTopic: a topic name or id that does not exist.
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrInvalidPartitions: a partition count that is not allowed.
	ErrInvalidPartitions = errors.New("invalid partition count")
	// ErrUploadNotRecorded: CommitFlush of a segment whose upload was never
	// recorded, or was forgotten as an orphan (its object may be deleted).
	// Nothing was committed; the flush must not be acknowledged.
	ErrUploadNotRecorded = errors.New("upload not recorded or forgotten")
)

// UnknownPartitionsError is returned by CommitFlush when chunks name
// partitions that do not exist; nothing was committed.
type UnknownPartitionsError struct {
	Partitions []TopicPartition
}

func (e *UnknownPartitionsError) Error() string {
	parts := make([]string, 0, len(e.Partitions))
	for _, tp := range e.Partitions {
		parts = append(parts, fmt.Sprintf("%x/%d", tp.Topic[:], tp.Partition))
	}
	return "commit flush: unknown partitions: " + strings.Join(parts, ", ")
}

// PermanentError wraps a store error that no retry can mend — a constraint
// violation, a schema that does not match this build — as opposed to an
// outage, which callers wait out. Stores wrap such errors; test with
// IsPermanent.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is one retrying cannot mend:
// ErrUploadNotRecorded, or a *PermanentError.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.Is(err, ErrUploadNotRecorded) || errors.As(err, &pe)
}
