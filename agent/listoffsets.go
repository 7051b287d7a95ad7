package agent

// ListOffsets, versions 1–8: latest (-1), earliest (-2), max timestamp (-3,
// v7+) and by timestamp. By-timestamp finds the chunk through the store's
// timestamp index and then the exact record by decoding that batch.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/partition"
	"github.com/siltstream/silt/segment"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleListOffsets(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		topic, terr := a.topics.Get(ctx, rt.Topic)
		for _, rpart := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rpart.Partition
			sp.Timestamp, sp.Offset = -1, -1
			switch {
			case terr != nil:
				sp.ErrorCode = errorCode(terr)
			case rpart.Partition < 0 || int(rpart.Partition) >= len(topic.Partitions):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
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
	case -3:
		row, ok, err := a.store.IndexMaxTimestamp(ctx, p.TP)
		if err != nil || !ok {
			return -1, -1, err
		}
		return a.findRecord(ctx, row, func(ts int64) bool { return ts == row.MaxTimestamp })
	}
	if target < 0 {
		return -1, -1, kerr.InvalidRequest
	}
	row, ok, err := a.store.IndexByTimestamp(ctx, p.TP, target)
	if err != nil || !ok {
		return -1, -1, err
	}
	return a.findRecord(ctx, row, func(ts int64) bool { return ts >= target })
}

// findRecord returns the timestamp and offset of the first record in row's
// chunk whose timestamp satisfies match.
func (a *Agent) findRecord(ctx context.Context, row metastore.IndexEntry, match func(int64) bool) (int64, int64, error) {
	chunk, err := a.bucket.Get(ctx, row.SegmentKey, row.Position, row.Length)
	if err != nil {
		return -1, -1, err
	}
	base := row.BaseOffset
	it := segment.NewBatchIter(chunk)
	for it.Next() {
		h := it.Header()
		if match(h.MaxTimestamp) {
			if ts, off, ok := recordMatching(it.Batch(), base, match); ok {
				return ts, off, nil
			}
			return h.MaxTimestamp, base + h.OffsetCount() - 1, nil
		}
		base += h.OffsetCount()
	}
	return -1, -1, it.Err()
}

// recordMatching decodes a batch's records (decompressing if needed) and
// returns the first whose timestamp matches.
func recordMatching(batch []byte, base int64, match func(int64) bool) (int64, int64, bool) {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(batch); err != nil {
		return 0, 0, false
	}
	raw := rb.Records
	if codec := rb.Attributes & 7; codec != 0 {
		var err error
		raw, err = decompressor.Decompress(raw, kgo.CompressionCodecType(codec))
		if err != nil {
			return 0, 0, false
		}
	}
	for i := int32(0); i < rb.NumRecords && len(raw) > 0; i++ {
		var r kmsg.Record
		// Each record is prefixed by its varint length.
		length, n := varint(raw)
		if n <= 0 || length < 0 || int64(len(raw)-n) < length {
			return 0, 0, false
		}
		if err := r.ReadFrom(raw[:n+int(length)]); err != nil {
			return 0, 0, false
		}
		raw = raw[n+int(length):]
		ts := rb.FirstTimestamp + r.TimestampDelta64
		if match(ts) {
			return ts, base + int64(r.OffsetDelta), true
		}
	}
	return 0, 0, false
}

// decompressor is shared: building one per call would rebuild its pools.
var decompressor = kgo.DefaultDecompressor()

// varint decodes a zig-zag varint as Kafka records use.
func varint(b []byte) (int64, int) {
	var ux uint64
	var s uint
	for i, c := range b {
		if i == 10 {
			return 0, -1
		}
		if c < 0x80 {
			ux |= uint64(c) << s
			x := int64(ux >> 1)
			if ux&1 != 0 {
				x = ^x
			}
			return x, i + 1
		}
		ux |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, 0
}
