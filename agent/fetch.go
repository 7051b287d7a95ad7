package agent

// Fetch, versions 0–17.
//
// v0–v3 clients read only message formats v0 and v1, which Kafka
// down-converts to; Silt stores only v2 batches and does not convert, so
// each partition of such a fetch answers UNSUPPORTED_VERSION, as Kafka does
// with message.downconversion.enable=false (KIP-283). v17 adds only a
// follower's directory id.
//
// Fetch sessions (KIP-227) are declined: every response carries session id
// 0, which tells clients to keep sending full fetch requests; a request for
// an existing session (epoch > 0) gets FETCH_SESSION_ID_NOT_FOUND. Reads go
// through the index (in-memory tail, then the store) and the block cache;
// base offsets are patched into the returned copies; whole batches only.
// Long polls wait up to MaxWaitMs for MinBytes, woken by commits. A response
// holds at most fetch.max.bytes of batches, whatever MaxBytes and
// PartitionMaxBytes ask for, except that the first batch found is returned
// whole (KIP-74).

import (
	"context"
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
	rp       *kmsg.FetchResponseTopicPartition
	offset   int64
	maxBytes int64
}

func (a *Agent) handleFetch(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.SessionEpoch > 0 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return wire.Respond(resp)
	}
	az := a.access(c)
	var parts []fetchPart
	errored := false
	for i := range req.Topics {
		rt := &req.Topics[i]
		var topic *partition.Topic
		var terr error
		if req.Version >= 13 {
			topic, terr = a.topics.GetByID(ctx, rt.TopicID)
		} else {
			topic, terr = a.topics.Get(ctx, rt.Topic)
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
			default:
				parts = append(parts, fetchPart{p: topic.Partitions[rpart.Partition], rp: rp, offset: rpart.FetchOffset, maxBytes: int64(rpart.PartitionMaxBytes)})
			}
			errored = errored || rp.ErrorCode != 0
		}
	}
	if errored && len(parts) == 0 {
		return wire.Respond(resp) // nothing to wait for: Kafka answers errors at once
	}
	return wire.Defer(func(ctx context.Context) kmsg.Response {
		a.fetch(ctx, req, parts)
		return resp
	})
}

// fetch fills parts' responses, long-polling until MinBytes are available
// or MaxWaitMs passes.
func (a *Agent) fetch(ctx context.Context, req *kmsg.FetchRequest, parts []fetchPart) {
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	wake := make(chan struct{}, 1)
	for _, fp := range parts {
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
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
		timer.Stop()
	}
}

// fetchOnce reads what is available now. It reports the bytes returned and
// whether any partition answered with an error (which ends a long poll).
func (a *Agent) fetchOnce(ctx context.Context, parts []fetchPart, maxBytes int64, readCommitted bool) (total int64, errored bool) {
	for _, fp := range parts {
		rp := fp.rp
		rp.RecordBatches = noRecords
		if err := a.topics.Load(ctx, fp.p); err != nil {
			rp.ErrorCode = errorCode(err)
			errored = true
			continue
		}
		if hw, logStart := fp.p.Offsets(); fp.offset > hw || fp.offset < logStart {
			// The cached offsets may lag the store (a missed notification):
			// ask it before telling the client to reset.
			if err := a.topics.Resync(ctx, fp.p); err != nil {
				rp.ErrorCode = errorCode(err)
				errored = true
				continue
			}
		}
		hw, logStart := fp.p.Offsets()
		lso := fp.p.CachedLSO()
		if readCommitted {
			var err error
			if lso, err = a.topics.StableOffset(ctx, fp.p); err != nil {
				rp.ErrorCode = errorCode(err)
				errored = true
				continue
			}
			hw, logStart = fp.p.Offsets()
		}
		rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = hw, lso, logStart
		if fp.offset < logStart || fp.offset > hw {
			rp.ErrorCode = kerr.OffsetOutOfRange.Code
			errored = true
			continue
		}
		end := hw
		if readCommitted {
			end = lso // never past the last stable offset
		}
		if fp.offset >= end || total >= maxBytes {
			continue
		}
		limit := min(fp.maxBytes, maxBytes-total) // maxBytes also caps each partition
		data, err := a.reader.Read(ctx, fp.p, fp.offset, end, limit, total == 0)
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
