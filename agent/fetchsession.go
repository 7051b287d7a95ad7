package agent

// Fetch sessions (KIP-227), Fetch v7+.
//
// A consumer of many partitions sends each of them in every full fetch. A
// session remembers the partitions (and their fetch offsets) an agent is
// asked for, so the client sends only what changed (a new fetch offset, a
// partition added or forgotten) and the agent answers only partitions
// with records or whose high watermark, last stable offset, log start
// offset or error changed since the session last answered them.
//
// Epochs, as in Kafka: -1 is a sessionless full fetch (and closes the
// session named, if any); 0 is a full fetch that opens a session (closing
// the one named); n > 0 is the n-th incremental fetch of a session, which
// must name a session this agent holds (else FETCH_SESSION_ID_NOT_FOUND,
// and the client starts over with a full fetch) at exactly its next epoch
// (else INVALID_FETCH_SESSION_EPOCH). A session opened with topic ids
// (v13+) is used with ids only (FETCH_SESSION_TOPIC_ID_ERROR otherwise).
//
// Sessions are per agent, in memory: a client that fetches from another
// agent, or after a restart, finds none and starts over, which costs one
// full fetch. The cache is bounded in sessions (fetch.session.cache.slots,
// Kafka's max.incremental.fetch.session.cache.slots) and in partitions in
// all (maxSessionPartitions); when full, a new session takes the slot of
// the least recently used one idle for longer than sessionEvictionAge, else
// none is opened and the client goes on with full fetches.

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// sessionEvictionAge is how long a session must have been idle before
	// a new one may take its slot (Kafka: 120 s for consumers).
	sessionEvictionAge = 2 * time.Minute
	// maxSessionPartitions bounds the partitions all sessions remember:
	// about 100 bytes each.
	maxSessionPartitions = 500_000
)

// sessionKey names a partition in a session: by topic name before v13,
// by topic id from v13.
type sessionKey struct {
	topic     string
	topicID   [16]byte
	partition int32
}

// sessionPart is what a session remembers of one partition: what the
// client asked for, and what the last response that carried it said.
type sessionPart struct {
	key                    sessionKey
	fetchOffset            int64
	maxBytes               int32
	highWatermark, lso     int64
	logStartOffset         int64
	currentLeaderEpoch     int32
	lastFetchedEpoch       int32
	logStartOffsetFollower int64
}

type fetchSession struct {
	id       int32
	epoch    int32 // the epoch of the next incremental fetch
	topicIDs bool
	parts    map[sessionKey]*sessionPart
	order    []sessionKey // partitions in fetch order; those that returned records move to the end
	lastUsed time.Time
}

// fetchSessions is an agent's session cache.
type fetchSessions struct {
	slots int
	now   func() time.Time

	mu         sync.Mutex // guards the fields below and every session
	sessions   map[int32]*fetchSession
	partitions int // remembered by all sessions
	opened     int64
	increments int64
}

func newFetchSessions(slots int) *fetchSessions {
	return &fetchSessions{slots: slots, now: time.Now, sessions: make(map[int32]*fetchSession)}
}

// stats reports the open sessions, and how many sessions were opened and
// incremental fetches served since the agent started.
func (s *fetchSessions) stats() (open int, opened, increments int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions), s.opened, s.increments
}

// fetchContext is what a Fetch request does with sessions: nothing
// (sessionless), open one after a full fetch, or run as an incremental
// fetch of one.
type fetchContext struct {
	sessions *fetchSessions
	open     bool          // a full fetch that opens a session
	session  *fetchSession // an incremental fetch of this session
}

// begin resolves req's session. For an incremental fetch it applies the
// request to the session and rewrites req.Topics into the session's whole
// partition list, so the fetch itself runs as a full one. It returns a
// non-zero error code for a session error (answered at the top level).
func (s *fetchSessions) begin(req *kmsg.FetchRequest) (fetchContext, int16) {
	fc := fetchContext{sessions: s}
	if req.Version < 7 || s.slots <= 0 && req.SessionEpoch <= 0 {
		return fc, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case req.SessionEpoch < 0: // -1: sessionless; close the one named
		s.closeLocked(req.SessionID)
		return fc, 0
	case req.SessionEpoch == 0:
		s.closeLocked(req.SessionID)
		fc.open = s.slots > 0
		return fc, 0
	}
	sess, ok := s.sessions[req.SessionID]
	switch {
	case !ok:
		return fc, kerr.FetchSessionIDNotFound.Code
	case req.SessionEpoch != sess.epoch:
		return fc, kerr.InvalidFetchSessionEpoch.Code
	case sess.topicIDs != (req.Version >= 13):
		return fc, kerr.FetchSessionTopicIDError.Code
	}
	// Forgotten first, then the partitions the request names (added or
	// updated): a partition both forgotten and named stays, as in Kafka.
	for _, ft := range req.ForgottenTopics {
		for _, p := range ft.Partitions {
			s.forgetLocked(sess, sessionKey{topic: ft.Topic, topicID: ft.TopicID, partition: p})
		}
	}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			k := sessionKey{topic: rt.Topic, topicID: rt.TopicID, partition: rp.Partition}
			sp := sess.parts[k]
			if sp == nil {
				if s.partitions >= maxSessionPartitions {
					continue // the response omits it; the client sees no change and resends it
				}
				sp = &sessionPart{key: k, highWatermark: -1, lso: -1, logStartOffset: -1}
				sess.parts[k] = sp
				sess.order = append(sess.order, k)
				s.partitions++
			}
			sp.fetchOffset, sp.maxBytes = rp.FetchOffset, rp.PartitionMaxBytes
			sp.currentLeaderEpoch, sp.lastFetchedEpoch, sp.logStartOffsetFollower = rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset
		}
	}
	sess.epoch = nextSessionEpoch(sess.epoch)
	sess.lastUsed = s.now()
	s.increments++
	req.Topics = sess.requestTopics()
	fc.session = sess
	return fc, 0
}

// nextSessionEpoch follows Kafka: after MaxInt32 comes 1.
func nextSessionEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

// requestTopics is the session's partitions as a full request would name
// them, in fetch order, one topic entry per run of the same topic.
func (sess *fetchSession) requestTopics() []kmsg.FetchRequestTopic {
	var out []kmsg.FetchRequestTopic
	for _, k := range sess.order {
		sp := sess.parts[k]
		if n := len(out); n == 0 || out[n-1].Topic != k.topic || out[n-1].TopicID != k.topicID {
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = k.topic, k.topicID
			out = append(out, t)
		}
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition, p.FetchOffset, p.PartitionMaxBytes = k.partition, sp.fetchOffset, sp.maxBytes
		p.CurrentLeaderEpoch, p.LastFetchedEpoch, p.LogStartOffset = sp.currentLeaderEpoch, sp.lastFetchedEpoch, sp.logStartOffsetFollower
		out[len(out)-1].Partitions = append(out[len(out)-1].Partitions, p)
	}
	return out
}

// finish completes a fetch: a full fetch that may open a session does so
// (remembering what the response said), an incremental one drops from the
// response every partition that has nothing new. It sets resp.SessionID.
func (fc fetchContext) finish(req *kmsg.FetchRequest, resp *kmsg.FetchResponse) {
	s := fc.sessions
	switch {
	case fc.session != nil:
		s.mu.Lock()
		defer s.mu.Unlock()
		resp.SessionID = fc.session.id
		if s.sessions[fc.session.id] != fc.session {
			return // closed meanwhile: answer in full; the next fetch finds no session
		}
		fc.session.trim(resp)
	case fc.open:
		s.mu.Lock()
		defer s.mu.Unlock()
		if sess := s.openLocked(req, resp); sess != nil {
			resp.SessionID = sess.id
		}
	}
}

// trim drops unchanged partitions from an incremental response and
// remembers what it says of the rest; partitions that carry records move
// to the end of the fetch order, so the others get their turn when a
// response is full.
func (sess *fetchSession) trim(resp *kmsg.FetchResponse) {
	var moved []sessionKey
	topics := resp.Topics[:0]
	for _, t := range resp.Topics {
		parts := t.Partitions[:0]
		for _, p := range t.Partitions {
			k := sessionKey{topic: t.Topic, topicID: t.TopicID, partition: p.Partition}
			sp := sess.parts[k]
			if sp == nil {
				continue
			}
			changed := len(p.RecordBatches) > 0 || p.ErrorCode != 0 ||
				p.HighWatermark != sp.highWatermark || p.LastStableOffset != sp.lso || p.LogStartOffset != sp.logStartOffset
			if !changed {
				continue
			}
			sp.highWatermark, sp.lso, sp.logStartOffset = p.HighWatermark, p.LastStableOffset, p.LogStartOffset
			if len(p.RecordBatches) > 0 {
				moved = append(moved, k)
			}
			parts = append(parts, p)
		}
		if len(parts) > 0 {
			t.Partitions = parts
			topics = append(topics, t)
		}
	}
	resp.Topics = topics
	if len(moved) > 0 {
		last := make(map[sessionKey]bool, len(moved))
		for _, k := range moved {
			last[k] = true
		}
		order := sess.order[:0:0]
		for _, k := range sess.order {
			if !last[k] {
				order = append(order, k)
			}
		}
		sess.order = append(order, moved...)
	}
}

// openLocked opens a session holding the partitions of a full fetch and
// what its response said of them, if there is room.
func (s *fetchSessions) openLocked(req *kmsg.FetchRequest, resp *kmsg.FetchResponse) *fetchSession {
	n := 0
	for _, t := range req.Topics {
		n += len(t.Partitions)
	}
	if n == 0 || n > maxSessionPartitions {
		return nil
	}
	for len(s.sessions) >= s.slots || s.partitions+n > maxSessionPartitions {
		if !s.evictLocked() {
			return nil
		}
	}
	sess := &fetchSession{epoch: 1, topicIDs: req.Version >= 13, parts: make(map[sessionKey]*sessionPart, n), lastUsed: s.now()}
	for {
		sess.id = rand.Int32()
		if _, taken := s.sessions[sess.id]; sess.id != 0 && !taken {
			break
		}
	}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			k := sessionKey{topic: rt.Topic, topicID: rt.TopicID, partition: rp.Partition}
			if _, dup := sess.parts[k]; dup {
				continue
			}
			sess.parts[k] = &sessionPart{key: k, fetchOffset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes,
				highWatermark: -1, lso: -1, logStartOffset: -1,
				currentLeaderEpoch: rp.CurrentLeaderEpoch, lastFetchedEpoch: rp.LastFetchedEpoch, logStartOffsetFollower: rp.LogStartOffset}
			sess.order = append(sess.order, k)
		}
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if sp := sess.parts[sessionKey{topic: t.Topic, topicID: t.TopicID, partition: p.Partition}]; sp != nil {
				sp.highWatermark, sp.lso, sp.logStartOffset = p.HighWatermark, p.LastStableOffset, p.LogStartOffset
			}
		}
	}
	s.sessions[sess.id] = sess
	s.partitions += len(sess.parts)
	s.opened++
	return sess
}

// evictLocked closes the least recently used session idle for longer than
// sessionEvictionAge; false if there is none.
func (s *fetchSessions) evictLocked() bool {
	var victim *fetchSession
	for _, sess := range s.sessions {
		if s.now().Sub(sess.lastUsed) >= sessionEvictionAge && (victim == nil || sess.lastUsed.Before(victim.lastUsed)) {
			victim = sess
		}
	}
	if victim == nil {
		return false
	}
	s.closeLocked(victim.id)
	return true
}

func (s *fetchSessions) closeLocked(id int32) {
	if sess, ok := s.sessions[id]; ok {
		s.partitions -= len(sess.parts)
		delete(s.sessions, id)
	}
}

func (s *fetchSessions) forgetLocked(sess *fetchSession, k sessionKey) {
	if _, ok := sess.parts[k]; !ok {
		return
	}
	delete(sess.parts, k)
	s.partitions--
	for i, o := range sess.order {
		if o == k {
			sess.order = append(sess.order[:i], sess.order[i+1:]...)
			break
		}
	}
}

// FetchSessions reports the fetch sessions the agent keeps, how many it
// opened and how many incremental fetches it served.
func (a *Agent) FetchSessions() (open int, opened, incremental int64) {
	return a.fetchSessions.stats()
}
