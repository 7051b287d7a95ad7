package agent

// Share sessions (KIP-932), ShareFetch and ShareAcknowledge.
//
// A share session is keyed by (group, member) on the agent the member
// fetches from, and remembers the partitions the member fetches there,
// so each ShareFetch names only partitions added (Topics) or dropped
// (ForgottenTopicsData; applied after the additions, as in Kafka). Epochs, as in Kafka: 0 opens a session (closing
// one the member had), -1 closes it (and releases every record the
// member still holds in the group), n > 0 must be the session's next
// epoch (INVALID_SHARE_SESSION_EPOCH; a session this agent does not hold
// is SHARE_SESSION_NOT_FOUND). A ShareFetch opening a session may not
// carry acknowledgements (INVALID_REQUEST).
//
// Sessions are per agent, in memory, and tied to the connection that
// opened them, as in Kafka 4.2: when it closes, the session ends and the
// member's records are released at once (a member that crashed does not
// hold its records for a whole lock duration). A member that fetches from
// another agent, or after a restart, opens a new session there.
// The cache is bounded in sessions (group.share.max.share.sessions,
// Kafka's default 2000: SHARE_SESSION_LIMIT_REACHED beyond, unless a
// session idle for sessionEvictionAge can be evicted) and in partitions,
// per session (maxSharePartsPerSession) and in all (maxSharePartsTotal):
// past either, the rest of a request's partitions are not added, and the
// client sees them unanswered.

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// maxSharePartsPerSession and maxSharePartsTotal bound the partitions one
// share session, and all of them, remember: about 100 bytes each.
const (
	maxSharePartsPerSession = 10_000
	maxSharePartsTotal      = 500_000
)

type shareSessionKey struct{ group, member string }

// shareTP is a partition by topic id.
type shareTP struct {
	topic     [16]byte
	partition int32
}

// shareSession is one member's session. next is, per partition, the
// offset the next read starts from: the first offset the store last said
// may be acquired (-1: not known yet).
type shareSession struct {
	epoch    int32 // the epoch of the next request
	parts    map[shareTP]int64
	order    []shareTP
	lastUsed time.Time
	conn     <-chan struct{} // closed when the connection that opened it ends; nil: none
}

type shareSessions struct {
	slots   int
	now     func() time.Time
	onClose func(shareSessionKey) // a session ended with its connection

	mu       sync.Mutex // guards the fields below and every session
	sessions map[shareSessionKey]*shareSession
	watched  map[<-chan struct{}]bool // connections a goroutine waits on
	parts    int                      // partitions all sessions remember
}

func newShareSessions(slots int, onClose func(shareSessionKey)) *shareSessions {
	return &shareSessions{
		slots: slots, now: time.Now, onClose: onClose,
		sessions: make(map[shareSessionKey]*shareSession), watched: make(map[<-chan struct{}]bool),
	}
}

// open starts a session for key with parts, replacing one key had, tied
// to the connection whose Done channel is conn (nil: none).
func (s *shareSessions) open(key shareSessionKey, parts []shareTP, conn <-chan struct{}) (*shareSession, int16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(key)
	if len(s.sessions) >= s.slots && !s.evictLocked() {
		return nil, kerr.ShareSessionLimitReached.Code
	}
	sess := &shareSession{epoch: 1, parts: make(map[shareTP]int64), lastUsed: s.now(), conn: conn}
	s.addLocked(sess, parts)
	s.sessions[key] = sess
	if conn != nil && !s.watched[conn] {
		// One goroutine per connection with sessions, ending with it.
		s.watched[conn] = true
		go func() {
			<-conn
			s.connClosed(conn)
		}()
	}
	return sess, 0
}

// connClosed ends the sessions tied to a connection that closed.
func (s *shareSessions) connClosed(conn <-chan struct{}) {
	s.mu.Lock()
	delete(s.watched, conn)
	var ended []shareSessionKey
	for k, sess := range s.sessions {
		if sess.conn == conn {
			s.dropLocked(k)
			ended = append(ended, k)
		}
	}
	s.mu.Unlock()
	for _, k := range ended {
		if s.onClose != nil {
			s.onClose(k)
		}
	}
}

// evictLocked drops the least recently used session idle for longer than
// sessionEvictionAge, reporting whether it found one.
func (s *shareSessions) evictLocked() bool {
	var oldest shareSessionKey
	var at time.Time
	for k, sess := range s.sessions {
		if at.IsZero() || sess.lastUsed.Before(at) {
			oldest, at = k, sess.lastUsed
		}
	}
	if at.IsZero() || s.now().Sub(at) < sessionEvictionAge {
		return false
	}
	s.dropLocked(oldest)
	return true
}

// dropLocked forgets key's session, if any.
func (s *shareSessions) dropLocked(key shareSessionKey) {
	if sess, ok := s.sessions[key]; ok {
		s.parts -= len(sess.parts)
		delete(s.sessions, key)
	}
}

// addLocked adds parts to sess, within the bounds.
func (s *shareSessions) addLocked(sess *shareSession, parts []shareTP) {
	for _, p := range parts {
		if _, ok := sess.parts[p]; ok || len(sess.parts) >= maxSharePartsPerSession || s.parts >= maxSharePartsTotal {
			continue
		}
		sess.parts[p] = -1
		sess.order = append(sess.order, p)
		s.parts++
	}
}

// next runs the request at epoch on key's session: it checks the epoch,
// adds and then forgets partitions, and moves the epoch on.
func (s *shareSessions) next(key shareSessionKey, epoch int32, add, forget []shareTP) (*shareSession, int16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[key]
	switch {
	case !ok:
		return nil, kerr.ShareSessionNotFound.Code
	case epoch != sess.epoch:
		return nil, kerr.InvalidShareSessionEpoch.Code
	}
	// Added, then forgotten, as Kafka does: a partition named only to
	// carry acknowledgements is also in forget and leaves the session.
	s.addLocked(sess, add)
	if len(forget) > 0 {
		gone := make(map[shareTP]bool, len(forget))
		for _, p := range forget {
			if _, ok := sess.parts[p]; ok {
				gone[p] = true
				delete(sess.parts, p)
				s.parts--
			}
		}
		kept := sess.order[:0]
		for _, p := range sess.order {
			if !gone[p] {
				kept = append(kept, p)
			}
		}
		sess.order = kept
	}
	sess.epoch = nextSessionEpoch(sess.epoch)
	sess.lastUsed = s.now()
	return sess, 0
}

// close ends key's session; it reports SHARE_SESSION_NOT_FOUND if there
// is none.
func (s *shareSessions) close(key shareSessionKey) int16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[key]; !ok {
		return kerr.ShareSessionNotFound.Code
	}
	s.dropLocked(key)
	return 0
}

// partitions lists sess's partitions with where to read each from.
func (s *shareSessions) partitions(sess *shareSession) ([]shareTP, []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tps := append([]shareTP(nil), sess.order...)
	next := make([]int64, len(tps))
	for i, p := range tps {
		next[i] = sess.parts[p]
	}
	return tps, next
}

// setNext remembers where the next read of p starts.
func (s *shareSessions) setNext(sess *shareSession, p shareTP, offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := sess.parts[p]; ok {
		sess.parts[p] = offset
	}
}
