package agent

// Fetch, versions 0–17.
//
// v0–v3 clients read only message formats v0 and v1, which Kafka
// down-converts to; Silt stores only v2 batches and does not convert, so
// each partition of such a fetch answers UNSUPPORTED_VERSION, as Kafka does
// with message.downconversion.enable=false (KIP-283). v17 adds only a
// follower's directory id.
//
// Fetch sessions (KIP-227) from v7: fetchsession.go. Reads go
// through the index (in-memory tail, then the store) and the block cache;
// base offsets are patched into the returned copies; whole batches only.
// Long polls wait up to MaxWaitMs for MinBytes, woken by commits. A response
// holds at most fetch.max.bytes of batches, whatever MaxBytes and
// PartitionMaxBytes ask for, except that the first batch found is returned
// whole (KIP-74). Every partition's answer carries its log start offset; an
// offset below it is OFFSET_OUT_OF_RANGE, also when retention or
// DeleteRecords moves it during the read (the store is asked again first).

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/partition"
	"github.com/siltstream/silt/wire"
)

// noRecords is an empty, non-null record set: kmsg encodes a nil slice as a
// null (length -1), which librdkafka rejects as an invalid MessageSetSize.
var noRecords = []byte{}

// fetchPart is one requested partition and where its answer goes.
type fetchPart struct {
	p        *partition.Partition
	internal *internalTopic // set for a partition of an internal topic (p is then its synthetic partition)
	rp       *kmsg.FetchResponseTopicPartition
	offset   int64
	maxBytes int64
}

func (a *Agent) handleFetch(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	// An incremental fetch becomes a full one here (its session's whole
	// partition list), and its response is trimmed at the end.
	fc, code := a.fetchSessions.begin(req)
	if code != 0 {
		resp.ErrorCode = code
		return wire.Respond(resp)
	}
	az := a.access(c)
	epochs := a.epochCheck()
	var parts []fetchPart
	errored := false
	for i := range req.Topics {
		rt := &req.Topics[i]
		var topic *partition.Topic
		var terr error
		if req.Version >= 13 {
			topic, terr = a.topicByID(ctx, rt.TopicID)
		} else {
			topic, terr = a.topic(ctx, rt.Topic)
		}
		var internal *internalTopic
		if terr == nil {
			internal = a.internal.byName(topic.Name)
		}
		name := rt.Topic
		if terr == nil {
			name = topic.Name
		}
		readable := az.topic(metastore.OpRead, name)
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		resp.Topics = append(resp.Topics, st)
		t := &resp.Topics[len(resp.Topics)-1]
		for j := range rt.Partitions {
			rpart := &rt.Partitions[j]
			rp := &t.Partitions[j]
			*rp = kmsg.NewFetchResponseTopicPartition()
			rp.Partition = rpart.Partition
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
			rp.RecordBatches = noRecords
			stale := epochs.code(ctx, rpart.CurrentLeaderEpoch)
			switch {
			case terr != nil && req.Version >= 13:
				rp.ErrorCode = kerr.UnknownTopicID.Code
			case !readable:
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case terr != nil:
				rp.ErrorCode = errorCode(terr)
			case rpart.Partition < 0 || int(rpart.Partition) >= len(topic.Partitions):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case req.Version < 4:
				rp.ErrorCode = kerr.UnsupportedVersion.Code
			case stale != 0:
				rp.ErrorCode = stale
			default:
				parts = append(parts, fetchPart{p: topic.Partitions[rpart.Partition], internal: internal, rp: rp, offset: rpart.FetchOffset, maxBytes: int64(rpart.PartitionMaxBytes)})
			}
			errored = errored || rp.ErrorCode != 0
		}
	}
	if errored && len(parts) == 0 {
		return wire.Respond(resp) // nothing to wait for: Kafka answers errors at once
	}
	a.capFetchToQuota(c, req)
	return wire.Defer(func(ctx context.Context) kmsg.Response {
		a.fetch(ctx, req, parts)
		// consumer_byte_rate: over it, the response goes without records
		// and with the throttle, and the connection is muted (quotas.go).
		throttle := a.fetchThrottle(c, resp)
		fc.finish(req, resp)
		c.Throttle(ctx, resp, throttle)
		return resp
	})
}

// fetch fills parts' responses, long-polling until MinBytes are available
// or MaxWaitMs passes.
func (a *Agent) fetch(ctx context.Context, req *kmsg.FetchRequest, parts []fetchPart) {
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	wake := make(chan struct{}, 1)
	for _, fp := range parts {
		if fp.internal != nil {
			fp.internal.watch(fp.p.Index, wake)
			defer fp.internal.unwatch(fp.p.Index, wake)
			continue
		}
		fp.p.Watch(wake)
		defer fp.p.Unwatch(wake)
	}
	// The response is built in memory: whatever the client asks for, it
	// holds at most fetch.max.bytes (plus the one batch KIP-74 allows).
	maxBytes := int64(a.cfg.FetchMaxBytes)
	if req.MaxBytes > 0 {
		maxBytes = min(maxBytes, int64(req.MaxBytes))
	}
	for {
		total, errored := a.fetchOnce(ctx, parts, maxBytes, req.IsolationLevel == 1)
		if total >= int64(req.MinBytes) || errored || !time.Now().Before(deadline) {
			a.stats.FetchedBytes.Add(total)
			return
		}
		timer := time.NewTimer(time.Until(deadline))
		a.stats.FetchesWaiting.Add(1)
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			a.stats.FetchesWaiting.Add(-1)
			return
		}
		timer.Stop()
		a.stats.FetchesWaiting.Add(-1)
	}
}

// fetchOnce reads what is available now. It reports the bytes returned and
// whether any partition answered with an error (which ends a long poll).
// First every partition's offsets are settled (and answered), which tells
// what each has to read; then the reads fill the response in order, each
// partition's bytes warmed in the cache a few partitions ahead (fetchwarm.go).
func (a *Agent) fetchOnce(ctx context.Context, parts []fetchPart, maxBytes int64, readCommitted bool) (total int64, errored bool) {
	ends := make([]int64, len(parts)) // per partition, where its read stops; -1: nothing to read
	var reads []int                   // indexes of parts with records to read, in order
	for i, fp := range parts {
		ends[i] = -1
		fp.rp.RecordBatches = noRecords
		if fp.internal != nil {
			continue
		}
		end, failed := a.fetchEnd(ctx, fp, readCommitted)
		if failed {
			errored = true
			continue
		}
		if fp.offset < end {
			ends[i] = end
			reads = append(reads, i)
		}
	}
	warm := a.warmReads(ctx, parts, ends, reads, maxBytes)
	defer warm.stop()
	next := 0 // reads[next] is the next partition read
	for i, fp := range parts {
		rp := fp.rp
		if fp.internal != nil {
			n, err := a.fetchInternal(ctx, fp, maxBytes-total)
			total += n
			errored = errored || err
			continue
		}
		if ends[i] < 0 {
			continue
		}
		end, j := ends[i], next
		next++
		if total >= maxBytes {
			continue
		}
		warm.wait(j, total)
		limit := min(fp.maxBytes, maxBytes-total) // maxBytes also caps each partition
		data, err := a.readPartition(ctx, fp.p, fp.offset, end, limit, total == 0)
		if errors.Is(err, errBelowLogStart) {
			_, logStart := fp.p.Offsets()
			rp.LogStartOffset = logStart
			rp.ErrorCode = kerr.OffsetOutOfRange.Code
			errored = true
			continue
		}
		if err != nil {
			a.log.Warn("fetch read failed", "topic", fp.p.TopicName, "partition", fp.p.Index, "offset", fp.offset, "err", err)
			rp.ErrorCode = kerr.KafkaStorageError.Code
			errored = true
			continue
		}
		if len(data) > 0 {
			rp.RecordBatches = data
			if readCommitted {
				aborted, err := a.store.AbortedTxns(ctx, fp.p.TP, fp.offset, end)
				if errors.Is(err, metastore.ErrOffsetOutOfRange) {
					// Retention moved the log start past what was read
					// and pruned the aborted transactions there: without
					// them these records cannot be filtered.
					_, rp.LogStartOffset = fp.p.Offsets()
					rp.ErrorCode = kerr.OffsetOutOfRange.Code
					rp.RecordBatches = noRecords
					errored = true
					continue
				}
				if err != nil {
					a.log.Warn("fetch aborted transactions", "topic", fp.p.TopicName, "partition", fp.p.Index, "err", err)
					rp.ErrorCode = kerr.KafkaStorageError.Code
					rp.RecordBatches = noRecords
					errored = true
					continue
				}
				rp.AbortedTransactions = nil
				for _, t := range aborted {
					at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
					at.ProducerID, at.FirstOffset = t.ProducerID, t.FirstOffset
					rp.AbortedTransactions = append(rp.AbortedTransactions, at)
				}
			}
		}
		total += int64(len(data))
	}
	return total, errored
}

// fetchEnd settles fp's offsets and answers them in its response: the
// high watermark, last stable offset and log start offset, or an error
// (failed: OFFSET_OUT_OF_RANGE, or the store's). end is where a read of
// fp stops: the high watermark, or the last stable offset for
// read_committed.
func (a *Agent) fetchEnd(ctx context.Context, fp fetchPart, readCommitted bool) (end int64, failed bool) {
	rp := fp.rp
	if err := a.topics.Load(ctx, fp.p); err != nil {
		rp.ErrorCode = errorCode(err)
		return 0, true
	}
	if hw, logStart := fp.p.Offsets(); fp.offset > hw || fp.offset < logStart {
		// The cached offsets may lag the store (a missed notification):
		// ask it before telling the client to reset.
		if err := a.topics.Resync(ctx, fp.p); err != nil {
			rp.ErrorCode = errorCode(err)
			return 0, true
		}
	}
	hw, logStart := fp.p.Offsets()
	lso := fp.p.CachedLSO()
	if readCommitted {
		var err error
		if lso, err = a.topics.StableOffset(ctx, fp.p); err != nil {
			rp.ErrorCode = errorCode(err)
			return 0, true
		}
		hw, logStart = fp.p.Offsets()
	}
	rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = hw, lso, logStart
	if fp.offset < logStart || fp.offset > hw {
		rp.ErrorCode = kerr.OffsetOutOfRange.Code
		return 0, true
	}
	if readCommitted {
		return lso, false // never past the last stable offset
	}
	return hw, false
}

// errBelowLogStart: the offset read is now below the partition's log start
// offset (retention or DeleteRecords moved it while the fetch was reading).
var errBelowLogStart = errors.New("offset below the log start offset")

// readAttempts bounds how often a read re-resolves the index after finding
// its rows gone (the log start moving again each time).
const readAttempts = 3

// readPartition reads p from offset. When the index rows it resolved are
// gone (partition.ErrIndexGone: an object deleted after retention pruned
// its rows), it re-reads the log start offset from the store: below it the
// answer is errBelowLogStart (OFFSET_OUT_OF_RANGE to the client), never a
// server error; otherwise it reads again from freshly resolved rows.
func (a *Agent) readPartition(ctx context.Context, p *partition.Partition, offset, end, limit int64, first bool) ([]byte, error) {
	var err error
	for range readAttempts {
		var data []byte
		data, err = a.reader.Read(ctx, p, offset, end, limit, first)
		if !errors.Is(err, partition.ErrIndexGone) {
			return data, err
		}
		if rerr := a.topics.Resync(ctx, p); rerr != nil {
			return nil, rerr
		}
		if _, logStart := p.Offsets(); offset < logStart {
			return nil, errBelowLogStart
		}
	}
	return nil, err
}

// fetchInternal reads a partition of an internal topic. Its log is already
// stable (no transactions) and starts at 0; maxBytes is what the response
// has left. It reports the bytes returned and whether it answered an error.
func (a *Agent) fetchInternal(ctx context.Context, fp fetchPart, maxBytes int64) (int64, bool) {
	rp, part := fp.rp, fp.p.Index
	hw, err := fp.internal.end(ctx, part)
	if err != nil {
		a.log.Warn("fetch internal topic", "topic", fp.p.TopicName, "partition", part, "err", err)
		rp.ErrorCode = kerr.KafkaStorageError.Code
		return 0, true
	}
	rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = hw, hw, 0
	if fp.offset < 0 || fp.offset > hw {
		rp.ErrorCode = kerr.OffsetOutOfRange.Code
		return 0, true
	}
	if fp.offset == hw || maxBytes <= 0 {
		return 0, false
	}
	data, err := fp.internal.read(ctx, part, fp.offset, hw, min(fp.maxBytes, maxBytes))
	if err != nil {
		a.log.Warn("fetch internal topic", "topic", fp.p.TopicName, "partition", part, "offset", fp.offset, "err", err)
		rp.ErrorCode = kerr.KafkaStorageError.Code
		return 0, true
	}
	if len(data) > 0 {
		rp.RecordBatches = data
	}
	return int64(len(data)), false
}
