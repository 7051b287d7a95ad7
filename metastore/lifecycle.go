package metastore

import (
	"context"
	"errors"
	"time"
)

// ErrOffsetOutOfRange: AdvanceLogStart to an offset above the high
// watermark (Kafka's DeleteRecords answers OFFSET_OUT_OF_RANGE).
var ErrOffsetOutOfRange = errors.New("offset out of range")

// RetentionStore moves partitions' log start offsets and prunes what falls
// below them. Kafka deletes whole log segments; Silt's unit is the index
// row (one per segment × partition chunk), so retention moves the log
// start offset to the base offset of the first row it keeps.
//
// Whatever moves a log start offset, in the same transaction:
//   - index rows wholly below it (LastOffset < log start) are deleted, and
//     their segments become candidates for garbage collection
//     (GCStore.DoomUnreferenced);
//   - aborted-transaction rows wholly below it are deleted;
//   - idempotent producers' sequence state whose newest batch is below it
//     is deleted (fence-only state left by transaction markers stays, and
//     so does that of producers with an open transaction on the partition,
//     whose ongoing-transaction rows stay too: the last stable offset must
//     not pass them);
//   - other agents are told (CommitHandler.LogStartMoved), where the store
//     serves several.
//
// The log start offset never moves backwards and never passes the high
// watermark.
type RetentionStore interface {
	// AdvanceLogStart moves tp's log start offset to offset, as Kafka's
	// DeleteRecords does: offset -1 means the high watermark; an offset
	// above the high watermark (or another negative one) gives
	// ErrOffsetOutOfRange and changes nothing; an offset at or below the
	// current log start changes nothing. It returns the log start offset
	// after the call (Kafka's low watermark). An unknown partition gives
	// ErrUnknownTopic.
	AdvanceLogStart(ctx context.Context, tp TopicPartition, offset int64) (int64, error)
	// ApplyRetention applies p to tp: with Kafka's rules, the oldest rows
	// are expired while their MaxTimestamp is before p.ExpireBefore, and
	// while the bytes of the rows after them reach p.MaxBytes; the log
	// start moves to the first kept row's base offset (the high watermark
	// if none is kept). An unknown partition gives ErrUnknownTopic.
	ApplyRetention(ctx context.Context, tp TopicPartition, p RetentionPolicy) (RetentionResult, error)
}

// RetentionPolicy is one partition's retention, from its topic's
// retention.ms and retention.bytes.
type RetentionPolicy struct {
	// ExpireBefore: rows whose MaxTimestamp (Unix ms) is below it expire.
	// Use math.MinInt64 for retention.ms = -1.
	ExpireBefore int64
	// MaxBytes: the partition keeps at most this many bytes of rows
	// (retention.bytes); negative for no limit.
	MaxBytes int64
}

// RetentionResult says what ApplyRetention did.
type RetentionResult struct {
	LogStartOffset int64 // after the call
	Moved          bool  // the log start offset moved forward
	ExpiredRows    int64 // index rows deleted
	ExpiredBytes   int64 // their bytes
}

// GCStore is the metastore side of garbage collection: the one path by
// which Silt deletes objects from the bucket.
//
// An object is deleted in three steps, each its own transaction:
//
//  1. Doomed: its segment record leaves the segments table and enters the
//     garbage queue, in one transaction that verifies nothing references
//     it: an uncommitted upload (ForgetUpload, for orphans), or a
//     committed segment no index row references (DoomUnreferenced). A
//     segment without a record can never be committed (CommitFlush gives
//     ErrUploadNotRecorded), and index rows are only ever added by
//     committing a segment, so once doomed an object stays unreferenced.
//  2. After the grace period, DoomedObjects lists it and the collector
//     deletes the object: readers that resolved an index row before it
//     was pruned have had that long to read.
//  3. ForgetDoomed drops it from the queue.
//
// A collector that dies between 2 and 3 deletes the object again next
// time, harmlessly (deleting a missing object is not an error).
type GCStore interface {
	// DoomUnreferenced dooms up to limit committed segments that lost
	// index rows (retention, DeleteRecords, a deleted topic) and that no
	// index row references any more, and reports how many it doomed and
	// whether candidates remain.
	DoomUnreferenced(ctx context.Context, limit int) (doomed int, more bool, err error)
	// DoomedObjects lists up to limit doomed objects doomed more than grace
	// ago (by the store's clock), oldest first.
	DoomedObjects(ctx context.Context, grace time.Duration, limit int) ([]DoomedObject, error)
	// ForgetDoomed drops deleted objects from the garbage queue.
	ForgetDoomed(ctx context.Context, keys []string) error
	// GCBacklog counts the objects doomed and not yet deleted, and their
	// bytes as recorded at commit (orphans count 0 bytes: their size was
	// never recorded).
	GCBacklog(ctx context.Context) (objects, bytes int64, err error)
	// Holdings counts the objects Silt believes the bucket holds for it:
	// every upload recorded and not yet deleted (in flight, committed, or
	// queued for deletion), and the bytes of those whose size is known
	// (recorded at commit).
	Holdings(ctx context.Context) (objects, bytes int64, err error)
}

// DoomedObject is an object in the garbage queue.
type DoomedObject struct {
	Key      string
	Size     int64 // bytes recorded at commit; 0 for orphans
	DoomedAt time.Time
}

// CompactionStore swaps a partition's index rows for the row of a
// compacted segment (level 0 flush segments rewritten into one level 1
// per-partition segment, see segment/FORMAT.md).
type CompactionStore interface {
	// ReplaceIndex, in ONE transaction: checks that r.Old are still
	// exactly the partition's index rows over [r.Old[0].BaseOffset,
	// r.Old[len-1].LastOffset] (same offsets, segment, position and
	// length, and no others); deletes them; inserts one row for r's
	// segment covering that range; marks the segment committed, recording
	// the range as IndexBySegment and DoomUnreferenced expect; and makes
	// the old rows' segments garbage-collection candidates (GCStore), so
	// each is doomed once nothing else references it.
	//
	// If the rows changed meanwhile (retention, DeleteRecords, a deleted
	// topic, another compactor swapped them first), nothing changes and
	// replaced is false: the caller forgets its upload (ForgetUpload) so
	// the collector deletes it. As with CommitFlush, the upload must have
	// been recorded and not forgotten, else the error wraps
	// ErrUploadNotRecorded; a retry of a swap that committed (the segment
	// is committed already) changes nothing and reports whether its row
	// is still in the index.
	ReplaceIndex(ctx context.Context, r Replacement) (replaced bool, err error)
}

// Replacement is one compaction swap: rows Old of one partition, consecutive
// in offset order, replaced by one row of segment SegmentKey holding the
// same offsets at [Position, Position+Length).
type Replacement struct {
	TopicPartition
	Old          []IndexEntry
	SegmentKey   string
	AgentID      string
	Size         int64 // object size in bytes
	Position     int64
	Length       int64
	BatchCount   int32
	MinTimestamp int64
	MaxTimestamp int64
	// Removes says the new segment holds fewer records than the old rows
	// (keyed compaction); stores that serve several agents tell them
	// (CommitHandler.IndexReplaced) when the swap commits.
	Removes bool
}
