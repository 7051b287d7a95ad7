package agent

// ListOffsets, versions 0–9: latest (-1), earliest (-2: the log start
// offset), max timestamp (-3, v7+), earliest local (-4, v8+: the log start
// offset, as Kafka answers without tiered storage), latest tiered (-5, v9+:
// -1, nothing is tiered in Kafka's sense) and by timestamp (never below the
// log start offset). Internal topics answer from their own logs
// (internaltopics.go). By-timestamp finds the chunk through the store's
// timestamp index and then the exact record by decoding that batch, with
// decompression bounded by maxDecompressedBatch.
//
// v0 answers a list of at most MaxNumOffsets offsets, newest first, that
// Kafka takes from segment boundaries: here latest answers the high
// watermark followed by the log start offset, earliest the log start
// offset, and a timestamp the first offset at or after it (the boundary a
// segment ending there would have), or the high watermark past the last
// record.

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/partition"
	"github.com/siltstream/silt/segment"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleListOffsets(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	az := a.access(c)
	epochs := a.epochCheck()
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		var topic *partition.Topic
		terr := error(kerr.TopicAuthorizationFailed)
		if az.topic(metastore.OpDescribe, rt.Topic) {
			topic, terr = a.topic(ctx, rt.Topic)
		}
		internal := a.internal.byName(rt.Topic)
		for _, rpart := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rpart.Partition
			sp.Timestamp, sp.Offset = -1, -1
			stale := epochs.code(ctx, rpart.CurrentLeaderEpoch)
			switch {
			case terr != nil:
				sp.ErrorCode = errorCode(terr)
			case rpart.Partition < 0 || int(rpart.Partition) >= len(topic.Partitions):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case stale != 0:
				sp.ErrorCode = stale
			case internal != nil:
				ts, off, err := listInternalOffset(ctx, internal, rpart.Partition, rpart.Timestamp)
				if err != nil {
					a.log.Warn("list offsets", "topic", rt.Topic, "partition", rpart.Partition, "err", err)
					sp.ErrorCode = errorCode(err)
				} else {
					sp.Timestamp, sp.Offset, sp.LeaderEpoch = ts, off, 0
				}
				if err == nil && req.Version == 0 {
					// Its log starts at 0 and ends at its end.
					end, err := internal.end(ctx, rpart.Partition)
					if err != nil {
						sp.ErrorCode = errorCode(err)
					} else {
						sp.OldStyleOffsets, sp.ErrorCode = oldStyleOffsets(end, 0, rpart.Timestamp, off, rpart.MaxNumOffsets)
					}
				}
			default:
				ts, off, err := a.listOffset(ctx, topic.Partitions[rpart.Partition], rpart.Timestamp)
				if err == nil && rpart.Timestamp == -1 && req.IsolationLevel == 1 {
					off, err = a.topics.StableOffset(ctx, topic.Partitions[rpart.Partition]) // read_committed: the LSO
				}
				if err != nil {
					a.log.Warn("list offsets", "topic", rt.Topic, "partition", rpart.Partition, "err", err)
					sp.ErrorCode = errorCode(err)
				} else {
					sp.Timestamp, sp.Offset, sp.LeaderEpoch = ts, off, 0
				}
				if err == nil && req.Version == 0 {
					hw, logStart := topic.Partitions[rpart.Partition].Offsets()
					sp.OldStyleOffsets, sp.ErrorCode = oldStyleOffsets(hw, logStart, rpart.Timestamp, off, rpart.MaxNumOffsets)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return wire.Respond(resp)
}

// listOffset answers one partition. Offsets of records not found answer
// (-1, -1), as Kafka does for a timestamp past the last record.
func (a *Agent) listOffset(ctx context.Context, p *partition.Partition, target int64) (ts, offset int64, err error) {
	// Earliest and latest come from the store, not the cache: a stale
	// value would let the end offset seen through two agents go backwards.
	if err := a.topics.Resync(ctx, p); err != nil {
		return -1, -1, err
	}
	hw, logStart := p.Offsets()
	switch target {
	case -1:
		return -1, hw, nil
	case -2:
		return -1, logStart, nil
	case -4: // earliest local: all of a partition is "local" to Silt
		return -1, logStart, nil
	case -5: // latest tiered: as Kafka without remote storage
		return -1, -1, nil
	}
	if target < -3 {
		return -1, -1, kerr.InvalidRequest
	}
	// A row found may have been pruned by retention, and its object
	// deleted, before it is read: then look again, in the index as it is
	// now. Records below the log start offset are never answered (Kafka
	// searches from it).
	for attempt := 0; ; attempt++ {
		var (
			row metastore.IndexEntry
			ok  bool
			err error
		)
		if target == -3 {
			row, ok, err = a.store.IndexMaxTimestamp(ctx, p.TP)
		} else {
			row, ok, err = a.store.IndexByTimestamp(ctx, p.TP, target)
		}
		if err != nil || !ok {
			return -1, -1, err
		}
		want := target
		if target == -3 {
			want = row.MaxTimestamp // the first record at the maximum
		}
		ts, off, err := a.findRecord(ctx, row, want)
		if objectstore.IsNotFound(err) && attempt < readAttempts {
			continue
		}
		if err == nil && off >= 0 {
			if err := a.topics.Load(ctx, p); err != nil {
				return -1, -1, err
			}
			_, logStart := p.Offsets()
			off = max(off, logStart)
		}
		return ts, off, err
	}
}

// listInternalOffset answers one partition of an internal topic: its log
// starts at 0 and is stable up to its end (read_committed sees the same);
// record timestamps are commit times.
func listInternalOffset(ctx context.Context, it *internalTopic, part int32, target int64) (ts, offset int64, err error) {
	end, err := it.end(ctx, part)
	if err != nil {
		return -1, -1, err
	}
	switch {
	case target == -1:
		return -1, end, nil
	case target == -2, target == -4:
		return -1, 0, nil
	case target == -5:
		return -1, -1, nil
	case target == -3:
		offset, ts, err = it.maxTime(ctx, part, end)
		return ts, offset, err
	case target < 0:
		return -1, -1, kerr.InvalidRequest
	}
	offset, ts, err = it.byTime(ctx, part, target, end)
	return ts, offset, err
}

// maxDecompressedBatch bounds the records of one batch decompressed to find
// a timestamp. Producers choose what they compress: without a bound, a batch
// of a few kilobytes can expand to gigabytes. A batch over it answers its
// first offset, as Kafka answers for a batch whose records it cannot tell
// apart: the client reads a few records early rather than missing any.
const maxDecompressedBatch = 8 << 20

// findRowStep is how much of a row findRecord reads at a time: a
// compacted row is tens of MiB, and the batch sought is often early.
const findRowStep = 1 << 20

// findRecord returns the timestamp and offset of the first record in row's
// chunk whose timestamp is at least target. It walks the chunk's batch
// headers in pieces of findRowStep, reading whole only the batch it
// searches.
func (a *Agent) findRecord(ctx context.Context, row metastore.IndexEntry, target int64) (int64, int64, error) {
	pos, end, base := row.Position, row.Position+row.Length, row.BaseOffset
	real := partition.HasRealOffsets(row.SegmentKey)
	var (
		buf    []byte // the object's bytes at [bufPos, bufPos+len(buf))
		bufPos int64
	)
	have := func(n int64) error {
		if pos >= bufPos && pos+n <= bufPos+int64(len(buf)) {
			return nil
		}
		b, err := a.bucket.Get(ctx, row.SegmentKey, pos, min(max(n, findRowStep), end-pos))
		if err != nil {
			return err
		}
		if int64(len(b)) < n {
			return fmt.Errorf("read %s at %d: %d bytes of %d: %w", row.SegmentKey, pos, len(b), n, segment.ErrTruncated)
		}
		buf, bufPos = b, pos
		return nil
	}
	for pos < end {
		if err := have(segment.BatchHeaderSize); err != nil {
			return -1, -1, err
		}
		h, err := segment.ParseBatchHeader(buf[pos-bufPos:])
		if err != nil {
			return -1, -1, err
		}
		size := int64(h.Size())
		if h.BatchLength < segment.BatchHeaderSize-12 || pos+size > end {
			return -1, -1, fmt.Errorf("walk %s at %d: batch of %d bytes in a row ending at %d: %w", row.SegmentKey, pos, size, end, segment.ErrCorruptBatch)
		}
		if real {
			base = h.BaseOffset // a cleaned row has gaps: the batch says where it is
		}
		if h.MaxTimestamp >= target && h.NumRecords > 0 { // an emptied batch holds no record to find
			if err := have(size); err != nil {
				return -1, -1, err
			}
			batch := buf[pos-bufPos : pos-bufPos+size]
			delta, ts, err := segment.FirstRecordAtOrAfter(batch, target, maxDecompressedBatch)
			if err != nil {
				if !errors.Is(err, segment.ErrNoRecord) {
					a.log.Warn("list offsets: records of a batch not searched", "segment", row.SegmentKey, "offset", base, "err", err)
				}
				return h.MaxTimestamp, base, nil
			}
			return ts, base + int64(delta), nil
		}
		base += h.OffsetCount()
		pos += size
	}
	return -1, -1, nil
}

// oldStyleOffsets answers one partition of a ListOffsets v0 request: up to
// maxNum offsets, newest first, of a log from logStart to hw. off is what
// listOffset found for target.
func oldStyleOffsets(hw, logStart, target, off int64, maxNum int32) ([]int64, int16) {
	var offsets []int64
	switch target {
	case -1:
		offsets = []int64{hw}
		if logStart < hw {
			offsets = append(offsets, logStart)
		}
	case -2:
		offsets = []int64{logStart}
	default:
		if target < 0 {
			return nil, kerr.InvalidRequest.Code
		}
		if off < 0 { // past the last record
			off = hw
		}
		offsets = []int64{off}
	}
	if maxNum < 0 {
		maxNum = 0
	}
	if int(maxNum) < len(offsets) {
		offsets = offsets[:maxNum]
	}
	return offsets, 0
}
