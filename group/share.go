package group

// Share groups of KIP-932 (group type "share"): membership and the
// server-side assignment. Unlike a consumer group, a share group's
// partitions are not owned: several members may be assigned the same
// partition, and which member gets which record is decided per record by
// the share-partition state (acquisition locks), not by the assignment.
// So there is no revocation to reconcile: a member takes its target
// assignment at the group epoch with its next heartbeat.
//
// The group epoch moves when a member joins or leaves, a subscription
// changes, or a subscribed topic appears, disappears or grows.
//
// A share group is saved like a consumer group (share_store.go): the
// group epoch as Generation, every member in Members, the rest as JSON,
// before any member learns a new epoch or assignment, so whichever agent
// loads the group next resumes it where it stands.

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"time"

	"github.com/siltstream/silt/metastore"
)

// AssignorSimple is the only share group assignor, as in Kafka.
const AssignorSimple = "simple"

// shareGroup is what a group of type share holds beside the fields it
// shares with other groups (generation is the group epoch).
type shareGroup struct {
	members map[string]*smember
	// subscribed is the resolution of the members' subscriptions the
	// target was computed from: topic name → "hex id/partitions" (text,
	// so it survives the JSON it is saved as).
	subscribed map[string]string
}

// smember is one member of a share group.
type smember struct {
	id, rackID           string
	clientID, clientHost string
	epoch                int32
	topics               []string // subscribed topic names, sorted
	assigned             partSet  // its assignment at epoch

	deadline time.Time // session expiry
	timer    *time.Timer
}

func newShareGroup() *shareGroup {
	return &shareGroup{members: make(map[string]*smember), subscribed: make(map[string]string)}
}

func (sg *shareGroup) memberIDs() []string {
	ids := make([]string, 0, len(sg.members))
	for id := range sg.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// stateName is the group's state as ShareGroupDescribe and ListGroups
// name it: Empty, or Stable (Kafka's share groups are Stable whenever
// they have members: there is nothing to reconcile).
func (sg *shareGroup) stateName() string {
	if len(sg.members) == 0 {
		return "Empty"
	}
	return "Stable"
}

// resolve maps every topic some member subscribes to, and that exists,
// to its id and partition count.
func (sg *shareGroup) resolve(topics []TopicInfo) map[string]string {
	out := make(map[string]string)
	for _, t := range topics {
		for _, m := range sg.members {
			if slices.Contains(m.topics, t.Name) {
				out[t.Name] = subscribedValue(t.ID, t.Partitions)
				break
			}
		}
	}
	return out
}

// subscribedTopics decodes sg.subscribed, by name.
func (sg *shareGroup) subscribedTopics() []topicInfo {
	var out []topicInfo
	for name, v := range sg.subscribed {
		id, n, ok := parseSubscribedValue(v)
		if !ok {
			continue
		}
		out = append(out, topicInfo{name: name, id: id, partitions: int32(n)})
	}
	sortTopics(out)
	return out
}

// assignShare is the simple assignor: per topic, with its subscribers in
// member id order, partitions go round-robin over the subscribers while
// there are at least as many partitions as subscribers (each partition to
// one member); with more subscribers than partitions, subscribers go
// round-robin over the partitions, so every subscriber gets a partition
// and some partitions are shared. Every partition of a subscribed topic
// is assigned to at least one subscriber.
func assignShare(members []*smember, topics []topicInfo) map[string]partSet {
	out := make(map[string]partSet, len(members))
	for _, m := range members {
		out[m.id] = make(partSet)
	}
	for _, t := range topics {
		var subs []*smember
		for _, m := range members {
			if slices.Contains(m.topics, t.name) {
				subs = append(subs, m)
			}
		}
		if len(subs) == 0 || t.partitions <= 0 {
			continue
		}
		n := int32(len(subs))
		if t.partitions >= n {
			for p := int32(0); p < t.partitions; p++ {
				out[subs[p%n].id][tp{t.id, p}] = struct{}{}
			}
			continue
		}
		for i, m := range subs {
			out[m.id][tp{t.id, int32(i) % t.partitions}] = struct{}{}
		}
	}
	return out
}

// savedShareGroup is a share group's state beyond metastore.Group's own
// fields, as JSON in its ConsumerState.
type savedShareGroup struct {
	Subscribed map[string]string  `json:"subscribed,omitempty"`
	Members    []savedShareMember `json:"members"`
}

type savedShareMember struct {
	ID         string       `json:"id"`
	RackID     string       `json:"rack_id,omitempty"`
	ClientID   string       `json:"client_id"`
	ClientHost string       `json:"client_host"`
	Epoch      int32        `json:"epoch"`
	Topics     []string     `json:"topics,omitempty"`
	Assigned   []savedTopic `json:"assigned,omitempty"`
}

// shareRecordLocked is the group as the store keeps it.
func (g *group) shareRecordLocked() metastore.Group {
	sh := g.share
	rec := metastore.Group{
		ID: g.id, Generation: g.generation, ProtocolType: "share", Protocol: AssignorSimple,
		State: sh.stateName(), Type: metastore.GroupTypeShare,
	}
	saved := savedShareGroup{Subscribed: sh.subscribed, Members: []savedShareMember{}}
	for _, id := range sh.memberIDs() {
		m := sh.members[id]
		rec.Members = append(rec.Members, metastore.GroupMember{
			ID: m.id, ClientID: m.clientID, ClientHost: m.clientHost, Protocols: []metastore.GroupProtocol{},
		})
		saved.Members = append(saved.Members, savedShareMember{
			ID: m.id, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.clientHost,
			Epoch: m.epoch, Topics: m.topics, Assigned: encodeParts(m.assigned),
		})
	}
	rec.ConsumerState, _ = json.Marshal(saved) // plain data: cannot fail
	return rec
}

// restoreShare installs a saved share group. Members get a full session
// to find this coordinator.
func (g *group) restoreShare(s metastore.Group) {
	sh := newShareGroup()
	g.share = sh
	var saved savedShareGroup
	if err := json.Unmarshal(s.ConsumerState, &saved); err != nil {
		g.c.log.Warn("saved share group does not decode; its members rejoin", "group", g.id, "err", err)
		return
	}
	if saved.Subscribed != nil {
		sh.subscribed = saved.Subscribed
	}
	for _, sm := range saved.Members {
		m := &smember{
			id: sm.ID, rackID: sm.RackID, clientID: sm.ClientID, clientHost: sm.ClientHost,
			epoch: sm.Epoch, topics: sm.Topics, assigned: decodeParts(sm.Assigned),
		}
		sh.members[m.id] = m
		g.touchShareLocked(m)
	}
}

// touchShareLocked extends m's session.
func (g *group) touchShareLocked(m *smember) {
	session := g.c.sSession
	m.deadline = time.Now().Add(session)
	if m.timer == nil {
		m.timer = time.AfterFunc(session, func() { g.expireShare(m) })
		return
	}
	m.timer.Reset(session)
}

// expireShare removes m if its session lapsed; otherwise it rearms the
// timer.
func (g *group) expireShare(m *smember) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.unloaded || g.share == nil || g.share.members[m.id] != m {
		return
	}
	if d := time.Until(m.deadline); d > 0 {
		m.timer.Reset(d)
		return
	}
	g.c.log.Info("share group member session expired", "group", g.id, "member", m.id)
	g.removeShareMemberLocked(m)
	g.saveLocked()
}

// removeShareMemberLocked drops m and moves the group epoch on, with a
// new target for the rest. The caller saves.
func (g *group) removeShareMemberLocked(m *smember) {
	if m.timer != nil {
		m.timer.Stop()
	}
	delete(g.share.members, m.id)
	g.generation++
	g.computeShareTargetLocked()
	if g.c.releaseShare != nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		g.c.releaseShare(ctx, g.id, m.id)
		cancel()
	}
}

// computeShareTargetLocked computes the target assignment at the group
// epoch from the last resolution of the subscriptions, keeping only
// topics some member still subscribes to.
func (g *group) computeShareTargetLocked() {
	sh := g.share
	var topics []topicInfo
	for _, t := range sh.subscribedTopics() {
		for _, m := range sh.members {
			if slices.Contains(m.topics, t.name) {
				topics = append(topics, t)
				break
			}
		}
	}
	kept := make(map[string]string, len(topics))
	for _, t := range topics {
		kept[t.name] = sh.subscribed[t.name]
	}
	sh.subscribed = kept
	members := make([]*smember, 0, len(sh.members))
	for _, id := range sh.memberIDs() {
		members = append(members, sh.members[id])
	}
	target := assignShare(members, topics)
	// Every member takes its target at once (there is nothing to revoke
	// in a share group); its epoch moves to the group's, and it learns the
	// assignment, at its next heartbeat.
	for id, m := range sh.members {
		m.assigned = target[id]
	}
}
