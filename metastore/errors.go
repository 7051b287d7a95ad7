package metastore

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrTopicExists: CreateTopic with a name that is taken.
	ErrTopicExists = errors.New("topic already exists")
	// ErrTopicDeletionPending: CreateTopic with the name of a deleted topic
	// whose deletion some live agent has not acknowledged yet (see
	// CommitWatcher). It wraps ErrTopicExists: to a client the name is
	// still taken (Kafka: "marked for deletion"); retry later.
	ErrTopicDeletionPending = fmt.Errorf("%w: the deletion of the previous topic of that name is not yet seen by every agent", ErrTopicExists)
	// ErrUnknownTopic: a topic name or id that does not exist.
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrInvalidPartitions: a partition count that is not allowed.
	ErrInvalidPartitions = errors.New("invalid partition count")
	// ErrUploadNotRecorded: CommitFlush of a segment whose upload was never
	// recorded, or was forgotten as an orphan (its object may be deleted).
	// Nothing was committed; the flush must not be acknowledged.
	ErrUploadNotRecorded = errors.New("upload not recorded or forgotten")
	// ErrConfigChanged: SetTopicConfig found the stored config changed since
	// it was read; read it again and retry the edit.
	ErrConfigChanged = errors.New("topic config changed concurrently")
	// ErrUnknownCredential: a user has no SCRAM credential for the
	// mechanism asked for.
	ErrUnknownCredential = errors.New("unknown credential")
)

// NodeIDTakenError is returned by RegisterAgent for a node id that another
// live agent holds.
type NodeIDTakenError struct {
	NodeID int32
	// Holder is the agent holding it; its ID is empty when the store lost
	// a race and cannot say which agent won.
	Holder Agent
}

func (e *NodeIDTakenError) Error() string {
	if e.Holder.ID == "" {
		return fmt.Sprintf("node id %d is held by another live agent", e.NodeID)
	}
	return fmt.Sprintf("node id %d is held by live agent %q at %s (lease until %s)",
		e.NodeID, e.Holder.ID, e.Holder.Addr, e.Holder.Expires.UTC().Format("15:04:05.000"))
}

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

// MissingAfterCommit is for stores answering a retried CommitFlush of a
// segment that is already committed, when chunks of it have no index rows
// any more. A partition that no longer exists (its topic was deleted after
// the commit whose reply was lost) is reported as an
// *UnknownPartitionsError, so the caller drops those chunks and retries
// the rest, as for a first commit; rows missing from a partition that
// exists are a *PermanentError. Nil if missing is empty.
func MissingAfterCommit(ctx context.Context, s interface {
	Partitions(ctx context.Context, topicID TopicID) ([]PartitionState, error)
}, segmentKey string, missing []TopicPartition) error {
	var unknown []TopicPartition
	for _, tp := range missing {
		states, err := s.Partitions(ctx, tp.Topic)
		switch {
		case errors.Is(err, ErrUnknownTopic), err == nil && int(tp.Partition) >= len(states):
			unknown = append(unknown, tp)
		case err != nil:
			return fmt.Errorf("commit flush %s: %w", segmentKey, err)
		default:
			return &PermanentError{Err: fmt.Errorf("commit flush %s: committed, but partition %x/%d has no index rows of it", segmentKey, tp.Topic[:], tp.Partition)}
		}
	}
	if len(unknown) > 0 {
		return &UnknownPartitionsError{Partitions: unknown}
	}
	return nil
}
