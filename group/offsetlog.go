package group

import (
	"context"
	"math"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/segment"
)

// OffsetLogStore is what OffsetLog needs from the metastore.
type OffsetLogStore interface {
	OffsetLog(ctx context.Context, part int32, from, end int64, limit int, maxBytes int64) ([]metastore.OffsetLogEntry, error)
	OffsetLogEnd(ctx context.Context, part int32) (int64, error)
}

// OffsetLog serves committed offsets as the records of Kafka's
// __consumer_offsets, so tools that read that topic (lag monitors such as
// Burrow, kcat, consoles) find every group's offsets.
//
// Partition p holds the groups that metastore.OffsetsPartition puts there;
// its records are the store's rows in sequence order, the sequence being
// the record's offset (metastore.OffsetLogStore): a log already compacted
// to the latest value per key, with gaps, like a compacted Kafka topic.
// Each record is in Kafka's schema: an offset commit, key OffsetCommitKey
// v1 (group, topic, partition) and value OffsetCommitValue v3 (offset,
// leader epoch, metadata, commit timestamp), or a group's metadata as last
// saved, key GroupMetadataKey v2 and value GroupMetadataValue v3
// (generation, protocol, leader, members with their subscriptions and
// assignments). Deleted offsets and groups vanish rather than leave
// tombstones (see OffsetLogStore): a reader that has already read one
// keeps it, as a Kafka reader does once the tombstone has been compacted
// away.
//
// Long polls watch a partition and are woken by Committed, which the agent
// calls for commits it makes, and by CommittedPartition, which it calls
// when the store reports another agent's commit (a store that does not
// report them leaves those to the next read: a long poll ends at its
// MaxWait).
type OffsetLog struct {
	store OffsetLogStore

	mu      sync.Mutex
	waiters map[int32]map[chan struct{}]struct{}
}

// NewOffsetLog returns an OffsetLog over store.
func NewOffsetLog(store OffsetLogStore) *OffsetLog {
	return &OffsetLog{store: store, waiters: make(map[int32]map[chan struct{}]struct{})}
}

// offsetLogPage is how many rows one query reads, and one batch holds.
const offsetLogPage = 500

// offsetScanBytes bounds the rows one query of a scan (FirstAtOrAfter,
// MaxTimestamp) holds: group ids are as long as clients make them.
const offsetScanBytes = 1 << 20

// End returns the high watermark of partition part.
func (l *OffsetLog) End(ctx context.Context, part int32) (int64, error) {
	return l.store.OffsetLogEnd(ctx, part)
}

// Read returns the records of partition part from offset from up to end
// (exclusive; at most the partition's End) as record batches, one per page
// of rows, adding pages while they stay within maxBytes (the first is
// returned whatever its size, KIP-74). It returns nil when there is nothing
// in [from, end).
func (l *OffsetLog) Read(ctx context.Context, part int32, from, end, maxBytes int64) ([]byte, error) {
	var out []byte
	for from < end && (len(out) == 0 || int64(len(out)) < maxBytes) {
		// The store stops near what is left of the budget (one row at
		// least), so a page never holds much more than maxBytes.
		rows, err := l.store.OffsetLog(ctx, part, from, end, offsetLogPage, maxBytes-int64(len(out)))
		if err != nil {
			return nil, err
		}
		if len(rows) == 0 {
			break
		}
		b := encodeOffsetRecords(rows)
		if len(out) > 0 && int64(len(out)+len(b)) > maxBytes {
			break
		}
		out = append(out, b...)
		from = rows[len(rows)-1].Seq + 1
	}
	return out, nil
}

// FirstAtOrAfter returns the offset of the first record of partition part
// below end committed at or after ts (Unix milliseconds), or -1 if none.
func (l *OffsetLog) FirstAtOrAfter(ctx context.Context, part int32, ts, end int64) (offset, timestamp int64, err error) {
	for from := int64(0); from < end; {
		rows, err := l.store.OffsetLog(ctx, part, from, end, offsetLogPage, offsetScanBytes)
		if err != nil {
			return -1, -1, err
		}
		for _, r := range rows {
			if r.CommitTimeMs >= ts {
				return r.Seq, r.CommitTimeMs, nil
			}
		}
		if len(rows) == 0 {
			break
		}
		from = rows[len(rows)-1].Seq + 1
	}
	return -1, -1, nil
}

// MaxTimestamp returns the offset and timestamp of the first record of
// partition part below end with the largest commit timestamp, or -1 if
// there is none. It reads the whole partition, a page at a time.
func (l *OffsetLog) MaxTimestamp(ctx context.Context, part int32, end int64) (offset, timestamp int64, err error) {
	offset, timestamp = -1, -1
	for from := int64(0); from < end; {
		rows, err := l.store.OffsetLog(ctx, part, from, end, offsetLogPage, offsetScanBytes)
		if err != nil {
			return -1, -1, err
		}
		for _, r := range rows {
			if r.CommitTimeMs > timestamp {
				offset, timestamp = r.Seq, r.CommitTimeMs
			}
		}
		if len(rows) == 0 {
			break
		}
		from = rows[len(rows)-1].Seq + 1
	}
	return offset, timestamp, nil
}

// encodeOffsetRecords builds rows (in sequence order) into record batches:
// one, unless two rows' sequences are further apart than a batch's int32
// offset delta can say.
func encodeOffsetRecords(rows []metastore.OffsetLogEntry) []byte {
	var out []byte
	recs := make([]segment.Record, 0, len(rows))
	base := rows[0].Seq
	for _, r := range rows {
		if r.Seq-base > math.MaxInt32 {
			out = append(out, segment.BuildBatch(base, recs)...)
			recs, base = recs[:0], r.Seq
		}
		key, value := offsetRecord(r)
		recs = append(recs, segment.Record{
			OffsetDelta: int32(r.Seq - base),
			TimestampMs: r.CommitTimeMs,
			Key:         key,
			Value:       value,
		})
	}
	return append(out, segment.BuildBatch(base, recs)...)
}

// offsetRecord encodes one entry's key and value as Kafka writes them.
func offsetRecord(r metastore.OffsetLogEntry) (key, value []byte) {
	if g := r.GroupMetadata; g != nil {
		k := kmsg.GroupMetadataKey{Version: 2, Group: r.Group}
		v := kmsg.NewGroupMetadataValue()
		v.Version = 3
		v.ProtocolType, v.Generation, v.CurrentStateTimestamp = g.ProtocolType, g.Generation, r.CommitTimeMs
		if g.Protocol != "" {
			v.Protocol = &g.Protocol
		}
		if g.Leader != "" {
			v.Leader = &g.Leader
		}
		for _, m := range g.Members {
			vm := kmsg.NewGroupMetadataValueMember()
			vm.MemberID, vm.ClientID, vm.ClientHost = m.ID, m.ClientID, m.ClientHost
			if m.InstanceID != "" {
				vm.InstanceID = &m.InstanceID
			}
			vm.RebalanceTimeoutMillis, vm.SessionTimeoutMillis = m.RebalanceTimeoutMs, m.SessionTimeoutMs
			vm.Subscription = []byte{}
			for _, p := range m.Protocols {
				if p.Name == g.Protocol {
					vm.Subscription = p.Metadata
				}
			}
			vm.Assignment = m.Assignment
			if vm.Assignment == nil {
				vm.Assignment = []byte{}
			}
			v.Members = append(v.Members, vm)
		}
		return k.AppendTo(nil), v.AppendTo(nil)
	}
	k := kmsg.OffsetCommitKey{Version: 1, Group: r.Group, Topic: r.Topic, Partition: r.Partition}
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = r.Offset, r.LeaderEpoch, r.Metadata, r.CommitTimeMs
	return k.AppendTo(nil), v.AppendTo(nil)
}

// Watch registers ch to be signalled when a commit this agent makes
// reaches partition part.
func (l *OffsetLog) Watch(part int32, ch chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.waiters[part]
	if w == nil {
		w = make(map[chan struct{}]struct{})
		l.waiters[part] = w
	}
	w[ch] = struct{}{}
}

// Unwatch stops signalling ch for partition part.
func (l *OffsetLog) Unwatch(part int32, ch chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.waiters[part], ch)
	if len(l.waiters[part]) == 0 {
		delete(l.waiters, part)
	}
}

// Committed wakes the long polls on group's partition: offsets of group
// were just committed.
func (l *OffsetLog) Committed(group string) {
	l.CommittedPartition(metastore.OffsetsPartition(group))
}

// CommittedAll wakes every long poll on __consumer_offsets: commits may
// have been missed (a store watch that restarted).
func (l *OffsetLog) CommittedAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for part := range l.waiters {
		l.wakeLocked(part)
	}
}

// CommittedPartition wakes the long polls on partition part.
func (l *OffsetLog) CommittedPartition(part int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wakeLocked(part)
}

// wakeLocked wakes the long polls on partition part; l.mu is held.
func (l *OffsetLog) wakeLocked(part int32) {
	for ch := range l.waiters[part] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
