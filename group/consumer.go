package group

// Consumer groups of KIP-848's protocol (group type "consumer"): the
// state a group holds beside a classic group's, and the reconciliation of
// one member's assignment toward its target (Kafka's
// CurrentAssignmentBuilder).
//
// The group epoch moves when membership, a subscription or the
// subscribed topics' partitions change; the target assignment is
// computed by the server-side assignor at once, so the assignment epoch
// always equals the group epoch. A member reaches its target through its
// own heartbeats: first it gives up the partitions it must revoke
// (UNREVOKED_PARTITIONS, member epoch unchanged); then it takes the new
// epoch and every target partition no other member still holds
// (UNRELEASED_PARTITIONS while some are held, STABLE once it has all).
// A partition is only ever handed to a member when no other member has it
// assigned or pending revocation, so no partition has two owners.

import (
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/siltstream/silt/metastore"
)

type memberState int8

const (
	memberStable memberState = iota
	memberUnrevoked
	memberUnreleased
)

func (s memberState) String() string {
	switch s {
	case memberUnrevoked:
		return "UNREVOKED_PARTITIONS"
	case memberUnreleased:
		return "UNRELEASED_PARTITIONS"
	default:
		return "STABLE"
	}
}

// Member epochs with a meaning of their own (ConsumerGroupHeartbeat).
const (
	epochLeave       = -1 // a member leaving
	epochStaticLeave = -2 // a static member leaving for now; its partitions wait for it
)

// tp is one partition of a topic, by topic id.
type tp struct {
	t metastore.TopicID
	p int32
}

// partSet is a set of partitions.
type partSet map[tp]struct{}

func (s partSet) clone() partSet {
	out := make(partSet, len(s))
	for k := range s {
		out[k] = struct{}{}
	}
	return out
}

func (s partSet) equal(o partSet) bool {
	if len(s) != len(o) {
		return false
	}
	for k := range s {
		if _, ok := o[k]; !ok {
			return false
		}
	}
	return true
}

// sorted lists s by topic id, then partition.
func (s partSet) sorted() []tp {
	out := make([]tp, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := compareID(out[i].t, out[j].t); c != 0 {
			return c < 0
		}
		return out[i].p < out[j].p
	})
	return out
}

func compareID(a, b metastore.TopicID) int {
	return slices.Compare(a[:], b[:])
}

// consumerGroup is what a group of type consumer holds beside the fields
// it shares with classic groups (generation is the group epoch).
type consumerGroup struct {
	members map[string]*cmember
	statics map[string]string // group.instance.id → member id
	// subscribed is the resolution of every member's subscription the
	// target was computed from: topic name → subscribedValue ("hex
	// id/partitions"). A change bumps the group epoch.
	subscribed map[string]string
	assignor   string // the assignor the target was computed with
}

// cmember is one member of a consumer group.
type cmember struct {
	id, instanceID, rackID string
	clientID, clientHost   string
	epoch, prevEpoch       int32
	state                  memberState
	rebalanceTimeout       time.Duration
	topics                 []string // subscribed topic names
	regex                  string   // subscribed topic regex; "" for none
	re                     *regexp.Regexp
	assignor               string // the server assignor the member asked for; "" for the default

	assigned partSet // partitions the member owns at its epoch
	revoking partSet // partitions it must give up before it moves on
	target   partSet // its share of the target assignment

	deadline time.Time // session expiry
	revokeBy time.Time // zero unless revoking
	timer    *time.Timer

	// classic is set for a member that speaks the classic protocol
	// (JoinGroup, SyncGroup, Heartbeat) to this consumer group; nil for
	// a ConsumerGroupHeartbeat member (migration.go).
	classic *classicMember
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{
		members:    make(map[string]*cmember),
		statics:    make(map[string]string),
		subscribed: make(map[string]string),
	}
}

func (cg *consumerGroup) memberIDs() []string {
	ids := make([]string, 0, len(cg.members))
	for id := range cg.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// stateName is the group's state as ConsumerGroupDescribe and ListGroups
// name it: Empty, Reconciling (some member has not reached its target at
// the assignment epoch) or Stable.
func (cg *consumerGroup) stateName(epoch int32) string {
	if len(cg.members) == 0 {
		return "Empty"
	}
	for _, m := range cg.members {
		if m.epoch != epoch || m.state != memberStable {
			return "Reconciling"
		}
	}
	return "Stable"
}

// ownedElsewhere reports whether a member other than except has p
// assigned or pending revocation.
func (cg *consumerGroup) ownedElsewhere(p tp, except *cmember) bool {
	for _, m := range cg.members {
		if m == except {
			continue
		}
		if _, ok := m.assigned[p]; ok {
			return true
		}
		if _, ok := m.revoking[p]; ok {
			return true
		}
	}
	return false
}

// reconcile moves m toward its target at the assignment epoch, given the
// partitions the member reports owning (nil: not reported). It reports
// whether m changed.
func (cg *consumerGroup) reconcile(m *cmember, epoch int32, owned partSet, now time.Time) bool {
	revoked := false
	if m.state == memberUnrevoked {
		if owned == nil {
			return false
		}
		for p := range m.revoking {
			if _, ok := owned[p]; ok {
				return false // still revoking
			}
		}
		m.revoking = nil
		m.revokeBy = time.Time{}
		revoked = true
		m.state = memberStable
		if m.epoch == epoch {
			// Revoked while at the assignment epoch already: take what
			// is free now below.
			m.state = memberUnreleased
		}
	}
	if m.epoch == epoch && m.state == memberStable {
		return false
	}
	keep := make(partSet)
	revoke := make(partSet)
	for p := range m.assigned {
		if _, ok := m.target[p]; ok {
			keep[p] = struct{}{}
		} else {
			revoke[p] = struct{}{}
		}
	}
	if len(revoke) > 0 {
		m.assigned, m.revoking = keep, revoke
		m.state = memberUnrevoked
		m.revokeBy = now.Add(m.rebalanceTimeout)
		return true
	}
	next := keep
	complete := true
	for p := range m.target {
		if _, ok := next[p]; ok {
			continue
		}
		if cg.ownedElsewhere(p, m) {
			complete = false
			continue
		}
		next[p] = struct{}{}
	}
	state := memberStable
	if !complete {
		state = memberUnreleased
	}
	changed := revoked || !next.equal(m.assigned) || m.epoch != epoch || m.state != state
	m.assigned = next
	if m.epoch != epoch {
		m.prevEpoch, m.epoch = m.epoch, epoch
	}
	m.state = state
	return changed
}

// subscribes reports whether m subscribes to topic.
func (m *cmember) subscribes(topic string) bool {
	if slices.Contains(m.topics, topic) {
		return true
	}
	return m.re != nil && m.re.MatchString(topic)
}
