package agent

// Produce, versions 0–11 (record batch v2 only). v0–v2 usually carry
// message formats v0 and v1, which Kafka up-converts; Silt stores only v2
// batches and answers such a partition UNSUPPORTED_FOR_MESSAGE_FORMAT. A v2
// batch is taken at any version, as Kafka takes it.
//
// Every batch is validated (magic, CRC-32C, counts, max.message.bytes) before
// anything is buffered; a partition whose batch fails gets its own error code
// and stores nothing. acks=0 is answered at once (with no response, as Kafka
// does); acks=1 and acks=-1 both wait until the flush holding the batch is in
// the bucket and committed in the metastore, which is stronger than Kafka's
// acks=1. Idempotent producers' sequence numbers are checked inside that
// commit: a retry of one of the last five batches is answered with its first
// offset and not appended again; a gap gets OUT_OF_ORDER_SEQUENCE_NUMBER and
// a stale epoch INVALID_PRODUCER_EPOCH. Transactional batches are taken
// only for partitions added to the producer's ongoing transaction
// (INVALID_TXN_STATE otherwise); control batches only come from the
// transaction coordinator, never from producers. Internal topics are not
// written by clients: INVALID_TOPIC_EXCEPTION, as in Kafka.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/ingest"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/partition"
	"github.com/siltstream/silt/segment"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleProduce(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	az := a.access(c)
	// Kafka: a request that carries transactional batches needs a
	// transactional id and WRITE on it, or every partition fails with
	// TRANSACTIONAL_ID_AUTHORIZATION_FAILED; a request without any is not
	// checked, whatever id it names.
	txnDenied := hasTransactionalBatches(req) &&
		(req.TransactionID == nil || !az.txnID(metastore.OpWrite, *req.TransactionID))

	// slots[i] is where the answer for batches[i] goes.
	type slot struct {
		rp *kmsg.ProduceResponseTopicPartition
		p  *partition.Partition
	}
	var slots []slot
	var batches []ingest.Batch
	txns := make(map[int64]*metastore.Txn)

	validAcks := req.Acks == 0 || req.Acks == 1 || req.Acks == -1
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		resp.Topics = append(resp.Topics, st)
		t := &resp.Topics[len(resp.Topics)-1]

		writable := az.topic(metastore.OpWrite, rt.Topic)
		var topic *partition.Topic
		var terr error
		if writable && !txnDenied {
			topic, terr = a.topics.Get(ctx, rt.Topic)
		}
		for j := range rt.Partitions {
			rpart := &rt.Partitions[j]
			rp := &t.Partitions[j]
			*rp = kmsg.NewProduceResponseTopicPartition()
			rp.Partition = rpart.Partition
			rp.BaseOffset = -1
			rp.LogAppendTime = -1
			rp.LogStartOffset = -1
			switch {
			case txnDenied:
				rp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
				continue
			case !writable:
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				continue
			case !validAcks:
				rp.ErrorCode = kerr.InvalidRequiredAcks.Code
				continue
			case a.internal.byName(rt.Topic) != nil:
				// Kafka: "Cannot append to internal topic".
				rp.ErrorCode = kerr.InvalidTopicException.Code
				msg := "cannot produce to internal topic " + rt.Topic
				rp.ErrorMessage = &msg
				continue
			case terr != nil:
				rp.ErrorCode = errorCode(terr)
				continue
			case topic.Partition(rpart.Partition) == nil:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			batch, hdr, err := validateProduceRecords(rpart.Records, topicMaxMessageBytes(topic))
			if err != nil {
				rp.ErrorCode = errorCode(err)
				msg := err.Error()
				rp.ErrorMessage = &msg
				continue
			}
			if strings.Contains(topic.Config["cleanup.policy"], "compact") {
				if i, err := firstKeylessRecord(batch); err != nil {
					rp.ErrorCode = errorCode(err)
					msg := err.Error()
					rp.ErrorMessage = &msg
					continue
				} else if i >= 0 {
					// Kafka's answer (LogValidator.validateKey): INVALID_RECORD
					// with the record's index.
					msg := fmt.Sprintf("Compacted topic cannot accept message without key in topic partition %s-%d", rt.Topic, rpart.Partition)
					rp.ErrorCode = kerr.InvalidRecord.Code
					rp.ErrorMessage = &msg
					rp.ErrorRecords = []kmsg.ProduceResponseTopicPartitionErrorRecord{{RelativeOffset: int32(i), ErrorMessage: &msg}}
					continue
				}
			}
			if hdr.IsTransactional() {
				if err := a.checkTxnProduce(ctx, txns, rt.Topic, rpart.Partition, hdr); err != nil {
					rp.ErrorCode = errorCode(err)
					continue
				}
			}
			p := topic.Partition(rpart.Partition)
			batches = append(batches, ingest.Batch{TP: p.TP, TopicName: topic.Name, Data: batch, Header: hdr})
			slots = append(slots, slot{rp: rp, p: p})
		}
	}

	var pending *ingest.Pending
	if len(batches) > 0 {
		timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
		rctx, cancel := context.WithTimeout(ctx, max(timeout, time.Second))
		// The frame's bytes were reserved in the write buffer before it
		// was read; the pipeline takes the reservation over, whatever
		// happens to the batches.
		reserved, waited := wire.TakeReserved(ctx)
		var throttled time.Duration
		var err error
		pending, throttled, err = a.ingest.SubmitReserved(rctx, batches, reserved)
		throttled += waited
		cancel()
		if req.Version < 6 {
			// Before KIP-219 the broker delays the response and reports the
			// delay. From v6 clients back off by throttle_time_ms themselves
			// after the response; the request already waited here, so
			// reporting it would make them wait twice.
			resp.ThrottleMillis = int32(throttled / time.Millisecond)
		}
		if err != nil {
			code := kerr.RequestTimedOut.Code // no room in the buffer in time
			switch {
			case errors.Is(err, ingest.ErrTooLarge):
				code = kerr.MessageTooLarge.Code
			case errors.Is(err, ingest.ErrClosed):
				code = kerr.NotLeaderForPartition.Code // shutting down: try another agent
			}
			for _, s := range slots {
				s.rp.ErrorCode = code
			}
			pending = nil
		} else {
			var bytes, records int64
			for _, b := range batches {
				bytes += int64(len(b.Data))
				records += int64(b.Header.NumRecords)
			}
			a.stats.ProducedBytes.Add(bytes)
			a.stats.ProducedBatchs.Add(int64(len(batches)))
			a.stats.ProducedRecord.Add(records)
		}
	}

	// producer_byte_rate: the throttle goes with the response (the larger
	// of it and backpressure's), and mutes the connection (quotas.go).
	throttle := a.produceThrottle(c, req)
	if req.Acks == 0 {
		return wire.NoResponse().Throttled(c, throttle)
	}
	if pending == nil {
		return wire.Respond(resp).Throttled(c, throttle)
	}
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second // a client that sets no timeout still gets an answer
	}
	return wire.Defer(func(ctx context.Context) kmsg.Response {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-pending.Done():
		case <-timer.C:
		case <-ctx.Done():
		}
		select {
		case <-pending.Done():
			for i, r := range pending.Results() {
				s := slots[i]
				if r.Err != nil {
					s.rp.ErrorCode = errorCode(r.Err)
					continue
				}
				s.rp.BaseOffset = r.BaseOffset
				_, s.rp.LogStartOffset = s.p.Offsets()
			}
		default:
			// Not committed in time. The batches may still commit later, as
			// with Kafka's REQUEST_TIMED_OUT: the client retries.
			for _, s := range slots {
				s.rp.ErrorCode = kerr.RequestTimedOut.Code
			}
		}
		return resp
	}).Throttled(c, throttle)
}

// hasTransactionalBatches reports whether any partition's records start
// with a transactional batch. Records that are not a batch are left to
// validateProduceRecords.
func hasTransactionalBatches(req *kmsg.ProduceRequest) bool {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if h, err := segment.ParseBatchHeader(rp.Records); err == nil && h.IsTransactional() {
				return true
			}
		}
	}
	return false
}

// validateProduceRecords checks that records holds exactly one valid v2
// batch (Produce v3+ allows only one per partition) within maxBytes.
func validateProduceRecords(records []byte, maxBytes int) ([]byte, segment.BatchHeader, error) {
	if len(records) == 0 {
		return nil, segment.BatchHeader{}, errInvalidRecord("no record batch")
	}
	batch, rest, hdr, err := segment.NextBatch(records)
	if err != nil {
		return nil, hdr, err
	}
	if len(rest) != 0 {
		return nil, hdr, errInvalidRecord("produce v3+ allows exactly one record batch per partition")
	}
	if len(batch) > maxBytes {
		return nil, hdr, errTooLarge
	}
	hdr, err = segment.ValidateBatch(batch)
	if err != nil {
		return nil, hdr, err
	}
	return batch, hdr, nil
}

var errTooLarge = errors.New("record batch is larger than max.message.bytes")

// maxKeyCheckBytes bounds what a batch produced to a compacted topic may
// decompress to while its keys are checked; keyed compaction rewrites
// batches up to a larger bound (jobs), so what is accepted can be cleaned.
const maxKeyCheckBytes = 16 << 20

// firstKeylessRecord returns the index of batch's first record without a
// key, or -1. A batch whose records decompress beyond maxKeyCheckBytes is
// refused as too large.
func firstKeylessRecord(batch []byte) (int, error) {
	i, found := 0, -1
	err := segment.WalkRecords(batch, maxKeyCheckBytes, func(r segment.CleanRecord) error {
		if r.Key == nil {
			found = i
			return errStopWalk
		}
		i++
		return nil
	})
	switch {
	case errors.Is(err, errStopWalk):
		return found, nil
	case errors.Is(err, segment.ErrTooLarge):
		return -1, errTooLarge
	}
	return found, err
}

var errStopWalk = errors.New("stop")

// checkTxnProduce admits a transactional batch only if its partition was
// added to the producer's ongoing transaction in the current epoch. txns
// caches lookups within one request.
func (a *Agent) checkTxnProduce(ctx context.Context, txns map[int64]*metastore.Txn, topic string, partition int32, hdr segment.BatchHeader) error {
	t, ok := txns[hdr.ProducerID]
	if !ok {
		got, found, err := a.store.TxnByProducer(ctx, hdr.ProducerID)
		if err != nil {
			return kerr.CoordinatorNotAvailable
		}
		if found {
			t = &got
		}
		txns[hdr.ProducerID] = t
	}
	switch {
	case t == nil:
		return kerr.InvalidProducerIDMapping
	case hdr.ProducerEpoch < t.Epoch:
		return kerr.InvalidProducerEpoch
	case hdr.ProducerEpoch > t.Epoch, t.State != metastore.TxnOngoing, !t.HasPartition(topic, partition):
		return kerr.InvalidTxnState
	}
	return nil
}

type invalidRecordError string

func (e invalidRecordError) Error() string { return string(e) }

func errInvalidRecord(msg string) error { return invalidRecordError(msg) }

// errorCode maps an error from the agent's internals to a Kafka error code.
func errorCode(err error) int16 {
	var ke *kerr.Error
	var ir invalidRecordError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, metastore.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, segment.ErrUnsupportedMagic):
		return kerr.UnsupportedForMessageFormat.Code
	case errors.Is(err, segment.ErrCorruptBatch), errors.Is(err, segment.ErrTruncated):
		return kerr.CorruptMessage.Code
	case errors.As(err, &ir), errors.Is(err, segment.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, errTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, metastore.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, metastore.ErrProducerFenced):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, metastore.ErrVerdictUnknown):
		return kerr.RequestTimedOut.Code // retriable: the retry meets the sequence check
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	default:
		return kerr.KafkaStorageError.Code
	}
}
