package metastore

import (
	"context"
	"unicode/utf16"
)

// OffsetsTopicPartitions is the partition count of __consumer_offsets:
// Kafka's default offsets.topic.num.partitions. Clients and tools assume a
// group's records live in the partition Kafka's rule picks (OffsetsPartition),
// so it is fixed, not configured.
const OffsetsTopicPartitions = 50

// OffsetsPartition is the partition of __consumer_offsets holding group's
// records, by Kafka's rule: Utils.abs(groupId.hashCode()) % partitions, where
// hashCode is Java's String hash over UTF-16 code units and abs maps
// Integer.MIN_VALUE to 0.
func OffsetsPartition(group string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(group)) {
		h = 31*h + int32(u)
	}
	switch {
	case h == -1<<31:
		h = 0
	case h < 0:
		h = -h
	}
	return h % OffsetsTopicPartitions
}

// OffsetLogStore serves the committed offsets as the log of Kafka's
// __consumer_offsets topic, already compacted to the latest value per key.
//
// Every write of a committed offset (CommitOffsets, CommitGroupOffsets)
// and every SaveGroup that stores a group takes the next sequence number of
// its group's partition (OffsetsPartition), in the same transaction; the
// sequence is the record's offset in that partition. So a partition is the
// rows of its groups (offsets, and each group's metadata as last saved)
// ordered by sequence, with gaps where a row was overwritten or deleted,
// exactly like a compacted Kafka log. Deleted offsets and groups
// (DeleteGroup, DeleteGroupOffsets, DeleteTopic) vanish from the log: no
// tombstone is kept.
//
// Contract, in addition to Store's:
//   - Sequence numbers are taken in commit order per partition: once
//     OffsetLogEnd has returned e, no row with a sequence below e appears
//     later. A reader that has seen everything below e misses nothing but
//     later writes.
//   - OffsetLogEnd never goes backwards (deletions do not move it).
type OffsetLogStore interface {
	// OffsetLog returns the committed offsets of the groups in partition
	// part whose sequence is in [from, end), in sequence order. It stops
	// at limit rows, or once the rows' sizes (OffsetLogEntrySize) add up
	// to maxBytes, always returning at least one row if any exists: group
	// ids are as long as clients make them, so a row count alone does not
	// bound what a read holds.
	OffsetLog(ctx context.Context, part int32, from, end int64, limit int, maxBytes int64) ([]OffsetLogEntry, error)
	// OffsetLogEnd returns the next sequence number of partition part: the
	// high watermark of that partition of __consumer_offsets.
	OffsetLogEnd(ctx context.Context, part int32) (int64, error)
}

// OffsetLogEntrySize is the size OffsetLog counts for a row: its strings'
// bytes and a fixed allowance for the rest.
func OffsetLogEntrySize(group, topic, metadata string) int64 {
	return int64(len(group)+len(topic)+len(metadata)) + offsetLogEntryOverhead
}

// offsetLogEntryOverhead covers a row's numbers, and the framing they get
// as a record.
const offsetLogEntryOverhead = 64

// OffsetLogEntry is one committed offset, or one group's metadata, as a
// record of __consumer_offsets.
type OffsetLogEntry struct {
	Seq   int64
	Group string
	CommittedOffset
	// GroupMetadata, if set, makes the entry the group's metadata as last
	// saved (SaveGroup) rather than an offset; CommittedOffset is then
	// empty.
	GroupMetadata *Group
	CommitTimeMs  int64 // when the store recorded it (Unix milliseconds)
}
