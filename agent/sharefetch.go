package agent

// ShareFetch, versions 1–2 (KIP-932), with share sessions
// (sharesession.go). Registered while share groups are on.
//
// Any agent serves a share fetch for any partition: which member holds
// which record is decided by the metastore (metastore.ShareStore), in one
// transaction per partition, so two agents never hand one record to two
// members. A fetch first applies the acknowledgements it carries
// (AcknowledgeErrorCode per partition: INVALID_RECORD_STATE for records
// the member does not hold), then, for each partition of the session,
// reads whole batches through the same path as Fetch (readPartition)
// from the first offset that may be acquired, acquires up to MaxRecords
// records among the offsets read, and returns the batches that hold
// them with their AcquiredRecords ranges and delivery counts. Records
// stay acquired for the group's share.record.lock.duration.ms; at the end
// of the lock they come back AVAILABLE, or ARCHIVED once delivered
// share.delivery.count.limit times. Nothing acquired: the fetch waits up
// to MaxWaitMs, woken by commits to its partitions.
//
// A share partition not yet in the store starts at the group's
// share.auto.offset.reset: the high watermark (latest) or the log start
// (earliest), at the first fetch that reaches it. Each setting is the
// group config if set (groupconfigs.go), else the agent's.
//
// READ on the group (GROUP_AUTHORIZATION_FAILED) and on each topic
// (TOPIC_AUTHORIZATION_FAILED) is required.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/partition"
	"github.com/siltstream/silt/segment"
	"github.com/siltstream/silt/wire"
)

// maxShareMemberIDLen bounds the member id a share request may carry: it
// is stored with every record the member acquires.
const maxShareMemberIDLen = 255

// defaultShareMaxRecords is the records a fetch acquires per partition
// when the request does not say (Kafka's max.poll.records).
const defaultShareMaxRecords = 500

// maxShareReadAttempts bounds the reads of one partition in one fetch
// when what was read had been acquired meanwhile.
const maxShareReadAttempts = 3

// shareRequestIDs checks the group and member ids of a share request.
func shareRequestIDs(group, member *string) (shareSessionKey, int16, string) {
	switch {
	case group == nil || *group == "":
		return shareSessionKey{}, kerr.InvalidRequest.Code, "GroupId can't be empty."
	case member == nil || *member == "" || len(*member) > maxShareMemberIDLen:
		return shareSessionKey{}, kerr.InvalidRequest.Code, "MemberId must be given and at most 255 bytes."
	}
	return shareSessionKey{group: *group, member: *member}, 0, ""
}

// shareFetchPart is one partition being fetched and where its answer goes.
type shareFetchPart struct {
	tp   shareTP
	p    *partition.Partition
	rp   *kmsg.ShareFetchResponseTopicPartition
	next int64 // where to read from; -1 unknown
	done bool  // answered (an error, or records acquired)
}

// shareRequest checks what ShareFetch and ShareAcknowledge both start
// with: the group and member ids, and READ on the group; it returns the
// session key, the connection's access and the group's share settings,
// or an error code and message.
func (a *Agent) shareRequest(ctx context.Context, c *wire.Conn, group, member *string) (shareSessionKey, access, shareSettings, int16, string) {
	key, code, msg := shareRequestIDs(group, member)
	if code != 0 {
		return key, access{}, shareSettings{}, code, msg
	}
	az := a.access(c)
	if !az.group(metastore.OpRead, key.group) {
		return key, az, shareSettings{}, kerr.GroupAuthorizationFailed.Code, ""
	}
	return key, az, a.shareSettingsOf(ctx, key.group), 0, ""
}

func (a *Agent) handleShareFetch(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.ShareFetchRequest)
	resp := req.ResponseKind().(*kmsg.ShareFetchResponse)
	fail := func(code int16, msg string) wire.Reply {
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		return wire.Respond(resp)
	}
	key, az, ss, code, msg := a.shareRequest(ctx, c, req.GroupID, req.MemberID)
	if code != 0 {
		return fail(code, msg)
	}
	resp.AcquisitionLockTimeoutMillis = int32(ss.lock / time.Millisecond)
	var named, forgotten []shareTP
	hasAcks := false
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			named = append(named, shareTP{rt.TopicID, rp.Partition})
			hasAcks = hasAcks || len(rp.AcknowledgementBatches) > 0
		}
	}
	for _, ft := range req.ForgottenTopicsData {
		for _, p := range ft.Partitions {
			forgotten = append(forgotten, shareTP{ft.TopicID, p})
		}
	}

	var sess *shareSession
	switch {
	case req.ShareSessionEpoch == 0:
		if hasAcks {
			return fail(kerr.InvalidRequest.Code, "Acknowledge data present in initial fetch request.")
		}
		var done <-chan struct{}
		if c != nil {
			done = c.Done()
		}
		sess, code = a.shareSessions.open(key, named, done)
	case req.ShareSessionEpoch == -1:
		// The session ends: acknowledgements apply, nothing is fetched,
		// and the member's other records are released.
		code = a.shareSessions.close(key)
	case req.ShareSessionEpoch < -1:
		code = kerr.InvalidShareSessionEpoch.Code
	default:
		sess, code = a.shareSessions.next(key, req.ShareSessionEpoch, named, forgotten)
	}
	if code != 0 {
		return fail(code, "")
	}

	// Acknowledgements carried by the fetch, answered per partition.
	answers := newShareAnswers()
	answer := answers.get
	type ackResult struct {
		tp   shareTP
		code int16
		msg  string
	}
	var acks []ackResult
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if len(rp.AcknowledgementBatches) == 0 {
				continue
			}
			batches := make([]metastore.ShareAckBatch, 0, len(rp.AcknowledgementBatches))
			for _, b := range rp.AcknowledgementBatches {
				batches = append(batches, metastore.ShareAckBatch{First: b.FirstOffset, Last: b.LastOffset, Types: b.AcknowledgeTypes})
			}
			code, msg := a.acknowledgeShare(ctx, az, key, ss, rt.TopicID, rp.Partition, batches)
			acks = append(acks, ackResult{shareTP{rt.TopicID, rp.Partition}, code, msg})
		}
	}
	if req.ShareSessionEpoch == -1 {
		a.releaseShareMember(ctx, key, ss)
	}
	setAcks := func() {
		for _, r := range acks {
			rp := answer(r.tp)
			rp.AcknowledgeErrorCode = r.code
			if r.msg != "" {
				rp.AcknowledgeErrorMessage = &r.msg
			}
		}
	}
	if sess == nil {
		setAcks()
		answers.fill(resp)
		return wire.Respond(resp)
	}

	tps, next := a.shareSessions.partitions(sess)
	var parts []*shareFetchPart
	for i, tp := range tps {
		fp := &shareFetchPart{tp: tp, next: next[i]}
		topic, err := a.topicByID(ctx, tp.topic)
		switch {
		case err != nil:
			fp.rp = answer(tp)
			fp.rp.ErrorCode = kerr.UnknownTopicID.Code
		case a.internal.byID(tp.topic) != nil:
			fp.rp = answer(tp)
			fp.rp.ErrorCode = kerr.InvalidRequest.Code // internal topics are not share-consumed
		case !az.topic(metastore.OpRead, topic.Name):
			fp.rp = answer(tp)
			fp.rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
		case tp.partition < 0 || int(tp.partition) >= len(topic.Partitions):
			fp.rp = answer(tp)
			fp.rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		default:
			fp.p = topic.Partitions[tp.partition]
			parts = append(parts, fp)
			continue
		}
		fp.done = true
	}
	setAcks()
	if len(parts) == 0 {
		answers.fill(resp)
		return wire.Respond(resp)
	}
	return wire.Defer(func(ctx context.Context) kmsg.Response {
		a.shareFetch(ctx, req, key, ss, sess, parts, answer)
		answers.fill(resp)
		return resp
	})
}

// shareAnswers collects a ShareFetch response's partitions, each
// answered at most once, in the order first answered.
type shareAnswers struct {
	order []shareTP
	parts map[shareTP]*kmsg.ShareFetchResponseTopicPartition
}

func newShareAnswers() *shareAnswers {
	return &shareAnswers{parts: make(map[shareTP]*kmsg.ShareFetchResponseTopicPartition)}
}

// get returns tp's answer, starting it if need be.
func (s *shareAnswers) get(tp shareTP) *kmsg.ShareFetchResponseTopicPartition {
	if rp, ok := s.parts[tp]; ok {
		return rp
	}
	rp := kmsg.NewShareFetchResponseTopicPartition()
	rp.Partition = tp.partition
	rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = -1, -1
	rp.Records = noRecords
	s.parts[tp] = &rp
	s.order = append(s.order, tp)
	return &rp
}

// fill sets resp.Topics from the answers, one entry per topic.
func (s *shareAnswers) fill(resp *kmsg.ShareFetchResponse) {
	index := map[[16]byte]int{}
	for _, tp := range s.order {
		i, ok := index[tp.topic]
		if !ok {
			t := kmsg.NewShareFetchResponseTopic()
			t.TopicID = tp.topic
			resp.Topics = append(resp.Topics, t)
			i = len(resp.Topics) - 1
			index[tp.topic] = i
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, *s.parts[tp])
	}
}

// shareFetch acquires records for parts, long-polling up to MaxWaitMs
// until some are acquired.
func (a *Agent) shareFetch(ctx context.Context, req *kmsg.ShareFetchRequest, key shareSessionKey, ss shareSettings, sess *shareSession, parts []*shareFetchPart, answer func(shareTP) *kmsg.ShareFetchResponseTopicPartition) {
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	wake := make(chan struct{}, 1)
	for _, fp := range parts {
		fp.p.Watch(wake)
		defer fp.p.Unwatch(wake)
	}
	maxBytes := int64(a.cfg.FetchMaxBytes)
	if req.MaxBytes > 0 {
		maxBytes = min(maxBytes, int64(req.MaxBytes))
	}
	maxRecords := int64(req.MaxRecords)
	if maxRecords <= 0 {
		maxRecords = defaultShareMaxRecords
	}
	maxRecords = min(maxRecords, int64(a.cfg.SharePartitionMaxRecordLocks))
	for {
		var total int64
		acquired := false
		for _, fp := range parts {
			if fp.done || total >= maxBytes {
				continue
			}
			n, got := a.shareFetchPartition(ctx, key, ss, sess, fp, maxBytes-total, maxRecords, total == 0, answer)
			total += n
			acquired = acquired || got
		}
		if acquired || !time.Now().Before(deadline) || allDone(parts) {
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

func allDone(parts []*shareFetchPart) bool {
	for _, fp := range parts {
		if !fp.done {
			return false
		}
	}
	return true
}

// shareFetchPartition reads and acquires records of one partition. It
// returns the bytes it answered and whether it acquired any.
func (a *Agent) shareFetchPartition(ctx context.Context, key shareSessionKey, ss shareSettings, sess *shareSession, fp *shareFetchPart, maxBytes, maxRecords int64, first bool, answer func(shareTP) *kmsg.ShareFetchResponseTopicPartition) (int64, bool) {
	failWith := func(code int16) (int64, bool) {
		fp.rp = answer(fp.tp)
		fp.rp.ErrorCode = code
		fp.done = true
		return 0, false
	}
	if err := a.topics.Load(ctx, fp.p); err != nil {
		return failWith(errorCode(err))
	}
	hw, logStart := fp.p.Offsets()
	if fp.next < logStart || fp.next > hw {
		// A stale cache, or retention moved on: ask the store.
		if err := a.topics.Resync(ctx, fp.p); err != nil {
			return failWith(errorCode(err))
		}
		hw, logStart = fp.p.Offsets()
	}
	end := hw // read_uncommitted reads to the high watermark
	if ss.readCommitted {
		lso, err := a.topics.StableOffset(ctx, fp.p)
		if err != nil {
			return failWith(errorCode(err))
		}
		end = lso // never past an open transaction
	}
	initial := end
	if ss.earliest {
		initial = logStart
	}
	skey := metastore.SharePartitionKey{Group: key.group, Topic: fp.tp.topic, Partition: fp.tp.partition}
	from := fp.next
	if from < 0 {
		from = initial
	}
	for range maxShareReadAttempts {
		from = max(from, logStart)
		var data []byte
		to := from
		if from < end {
			var err error
			data, err = a.readPartition(ctx, fp.p, from, end, maxBytes, first)
			if errors.Is(err, errBelowLogStart) {
				_, logStart = fp.p.Offsets()
				continue
			}
			if err != nil {
				a.log.Warn("share fetch read failed", "group", key.group, "topic", fp.p.TopicName, "partition", fp.p.Index, "offset", from, "err", err)
				return failWith(kerr.KafkaStorageError.Code)
			}
			to = batchesEnd(data, from)
		}
		now := time.Now().UnixMilli()
		got, st, err := a.store.AcquireShareRecords(ctx, skey, metastore.ShareAcquire{
			Member: key.member, NowMs: now, LockMs: ss.lock.Milliseconds(),
			MaxRecords: maxRecords, MaxInFlight: int64(a.cfg.SharePartitionMaxRecordLocks),
			DeliveryLimit: ss.deliveryLimit, From: from, To: to,
			LogStart: logStart, InitialOffset: initial,
		})
		if err != nil {
			a.log.Warn("share fetch acquire failed", "group", key.group, "topic", fp.p.TopicName, "partition", fp.p.Index, "err", err)
			return failWith(kerr.KafkaStorageError.Code)
		}
		nextFrom := st.NextAvailable()
		a.shareSessions.setNext(sess, fp.tp, nextFrom)
		fp.next = nextFrom
		if ss.readCommitted && len(got) > 0 {
			if got, err = a.archiveAborted(ctx, key, ss, skey, fp.p, data, got); err != nil {
				a.log.Warn("share fetch: archive aborted records", "group", key.group, "topic", fp.p.TopicName, "partition", fp.p.Index, "err", err)
				return failWith(kerr.KafkaStorageError.Code)
			}
			if len(got) == 0 {
				from = to // all of it aborted: read on
				continue
			}
		}
		if len(got) > 0 {
			fp.rp = answer(fp.tp)
			fp.rp.Records = trimBatches(data, got[0].First, got[len(got)-1].Last)
			for _, r := range got {
				ar := kmsg.NewShareFetchResponseTopicPartitionAcquiredRecord()
				ar.FirstOffset, ar.LastOffset, ar.DeliveryCount = r.First, r.Last, r.DeliveryCount
				fp.rp.AcquiredRecords = append(fp.rp.AcquiredRecords, ar)
			}
			fp.done = true
			return int64(len(fp.rp.Records)), true
		}
		// Nothing acquirable in what was read: read again from where the
		// store says records may be acquired (further on when others hold
		// what was read; further back when locks lapsed or the hint was
		// stale), if that is somewhere else below the high watermark.
		if nextFrom == from || nextFrom >= end {
			return 0, false
		}
		from = nextFrom
	}
	return 0, false
}

// archiveAborted archives the records of aborted transactions among
// those just acquired (a read_committed share group never delivers them,
// as Kafka's SharePartition does) and returns the acquired ranges left.
func (a *Agent) archiveAborted(ctx context.Context, key shareSessionKey, ss shareSettings, skey metastore.SharePartitionKey, p *partition.Partition, data []byte, got []metastore.AcquiredRange) ([]metastore.AcquiredRange, error) {
	first, last := got[0].First, got[len(got)-1].Last
	txns, err := a.store.AbortedTxns(ctx, p.TP, first, last+1)
	if err != nil || len(txns) == 0 {
		return got, err
	}
	var aborted [][2]int64 // inclusive offset ranges, in order
	for rest := data; len(rest) > 0; {
		_, r, h, err := segment.NextBatch(rest)
		if err != nil {
			break
		}
		rest = r
		if !h.IsTransactional() || h.IsControl() {
			continue
		}
		for _, t := range txns {
			if t.ProducerID == h.ProducerID && h.BaseOffset >= t.FirstOffset && h.BaseOffset <= t.LastOffset {
				aborted = append(aborted, [2]int64{h.BaseOffset, h.BaseOffset + h.OffsetCount() - 1})
				break
			}
		}
	}
	var kept []metastore.AcquiredRange
	var archive []metastore.ShareAckBatch
	for _, r := range got {
		for o := r.First; o <= r.Last; {
			// The next aborted range at or after o, if it covers o.
			hit := false
			for _, ab := range aborted {
				if o >= ab[0] && o <= ab[1] {
					end := min(ab[1], r.Last)
					archive = append(archive, metastore.ShareAckBatch{First: o, Last: end, Types: []int8{metastore.AckReject}})
					o, hit = end+1, true
					break
				}
			}
			if hit {
				continue
			}
			end := r.Last
			for _, ab := range aborted {
				if ab[0] > o && ab[0]-1 < end {
					end = ab[0] - 1
				}
			}
			kept = append(kept, metastore.AcquiredRange{First: o, Last: end, DeliveryCount: r.DeliveryCount})
			o = end + 1
		}
	}
	if len(archive) == 0 {
		return got, nil
	}
	if _, err := a.store.AcknowledgeShareRecords(ctx, skey, metastore.ShareAcknowledge{
		Member: key.member, NowMs: time.Now().UnixMilli(), LockMs: ss.lock.Milliseconds(),
		DeliveryLimit: ss.deliveryLimit, Batches: archive,
	}); err != nil {
		return nil, err
	}
	return kept, nil
}

// batchesEnd is the offset after the last batch in data (from if none).
func batchesEnd(data []byte, from int64) int64 {
	end := from
	for rest := data; len(rest) > 0; {
		_, r, h, err := segment.NextBatch(rest)
		if err != nil {
			break
		}
		end = max(end, h.BaseOffset+h.OffsetCount())
		rest = r
	}
	return end
}

// trimBatches keeps the batches of data that hold offsets first..last.
func trimBatches(data []byte, first, last int64) []byte {
	start, stop := -1, 0
	pos := 0
	for rest := data; len(rest) > 0; {
		b, r, h, err := segment.NextBatch(rest)
		if err != nil {
			break
		}
		if h.BaseOffset+h.OffsetCount() > first && h.BaseOffset <= last {
			if start < 0 {
				start = pos
			}
			stop = pos + len(b)
		}
		pos += len(b)
		rest = r
	}
	if start < 0 {
		return noRecords
	}
	return data[start:stop]
}

// acknowledgeShare applies one partition's acknowledgements for key's
// member, and returns the partition's error code and message.
func (a *Agent) acknowledgeShare(ctx context.Context, az access, key shareSessionKey, ss shareSettings, topicID [16]byte, part int32, batches []metastore.ShareAckBatch) (int16, string) {
	topic, err := a.topicByID(ctx, topicID)
	switch {
	case err != nil:
		return kerr.UnknownTopicID.Code, ""
	case !az.topic(metastore.OpRead, topic.Name):
		return kerr.TopicAuthorizationFailed.Code, ""
	case part < 0 || int(part) >= len(topic.Partitions):
		return kerr.UnknownTopicOrPartition.Code, ""
	}
	prevLast := int64(-1)
	for _, b := range batches {
		if err := b.Validate(); err != nil {
			return kerr.InvalidRequest.Code, err.Error()
		}
		if b.First <= prevLast {
			return kerr.InvalidRequest.Code, "acknowledgement batches overlap or are out of order"
		}
		prevLast = b.Last
	}
	errs, err := a.store.AcknowledgeShareRecords(ctx, metastore.SharePartitionKey{Group: key.group, Topic: topicID, Partition: part}, metastore.ShareAcknowledge{
		Member: key.member, NowMs: time.Now().UnixMilli(), LockMs: ss.lock.Milliseconds(),
		DeliveryLimit: ss.deliveryLimit, Batches: batches,
	})
	if err != nil {
		a.log.Warn("share acknowledge failed", "group", key.group, "topic", topic.Name, "partition", part, "err", err)
		return kerr.KafkaStorageError.Code, ""
	}
	for _, e := range errs {
		if errors.Is(e, metastore.ErrInvalidRecordState) {
			return kerr.InvalidRecordState.Code, ""
		}
		if e != nil {
			return kerr.InvalidRequest.Code, e.Error()
		}
	}
	return 0, ""
}

// shareSessionEnded releases the records of a member whose share session
// ended with its connection.
func (a *Agent) shareSessionEnded(key shareSessionKey) {
	ctx, cancel := context.WithTimeout(a.runCtx, 10*time.Second)
	defer cancel()
	a.releaseShareMember(ctx, key, a.shareSettingsOf(ctx, key.group))
}

// releaseShareMember returns the records key's member holds to the
// group (its session closed).
func (a *Agent) releaseShareMember(ctx context.Context, key shareSessionKey, ss shareSettings) {
	if err := a.store.ReleaseShareRecords(ctx, key.group, key.member, time.Now().UnixMilli(), ss.deliveryLimit); err != nil {
		a.log.Warn("release share records", "group", key.group, "member", key.member, "err", err)
	}
}
