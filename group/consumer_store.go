package group

// How a consumer group is saved: metastore.Group with Type "consumer",
// the group epoch as Generation, every member listed in Members (so the
// store's commit check and DeleteGroup see them), and the rest as JSON in
// ConsumerState. The group is saved whenever a member is about to learn
// an epoch or an assignment, before the response goes out, so whichever
// agent loads the group next resumes every member where it stands.

import (
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/siltstream/silt/metastore"
)

type savedConsumerGroup struct {
	Assignor   string                `json:"assignor,omitempty"`
	Subscribed map[string]string     `json:"subscribed,omitempty"`
	Members    []savedConsumerMember `json:"members"`
}

type savedConsumerMember struct {
	ID                 string       `json:"id"`
	InstanceID         string       `json:"instance_id,omitempty"`
	RackID             string       `json:"rack_id,omitempty"`
	ClientID           string       `json:"client_id"`
	ClientHost         string       `json:"client_host"`
	Epoch              int32        `json:"epoch"`
	PrevEpoch          int32        `json:"prev_epoch"`
	State              int8         `json:"state"`
	RebalanceTimeoutMs int64        `json:"rebalance_timeout_ms"`
	Topics             []string     `json:"topics,omitempty"`
	Regex              string       `json:"regex,omitempty"`
	Assignor           string       `json:"assignor,omitempty"`
	Assigned           []savedTopic `json:"assigned,omitempty"`
	Revoking           []savedTopic `json:"revoking,omitempty"`
	Target             []savedTopic `json:"target,omitempty"`
	// Classic is set for a member speaking the classic protocol.
	Classic *savedClassicMember `json:"classic,omitempty"`
}

// savedClassicMember is what a consumer group keeps of a member that
// speaks the classic protocol: its JoinGroup's session and protocols.
type savedClassicMember struct {
	SessionTimeoutMs int64                     `json:"session_timeout_ms"`
	Protocols        []metastore.GroupProtocol `json:"protocols"`
}

type savedTopic struct {
	ID         string  `json:"id"` // hex
	Partitions []int32 `json:"partitions"`
}

func encodeParts(s partSet) []savedTopic {
	var out []savedTopic
	for _, p := range s.sorted() {
		id := hex.EncodeToString(p.t[:])
		if n := len(out); n > 0 && out[n-1].ID == id {
			out[n-1].Partitions = append(out[n-1].Partitions, p.p)
			continue
		}
		out = append(out, savedTopic{ID: id, Partitions: []int32{p.p}})
	}
	return out
}

func decodeParts(ts []savedTopic) partSet {
	out := make(partSet)
	for _, t := range ts {
		var id metastore.TopicID
		if b, err := hex.DecodeString(t.ID); err == nil && len(b) == len(id) {
			copy(id[:], b)
		} else {
			continue
		}
		for _, p := range t.Partitions {
			out[tp{id, p}] = struct{}{}
		}
	}
	return out
}

// consumerRecordLocked is the group as the store keeps it.
func (g *group) consumerRecordLocked() metastore.Group {
	cg := g.consumer
	sg := metastore.Group{
		ID: g.id, Generation: g.generation, ProtocolType: "consumer",
		Protocol: cg.assignor, State: cg.stateName(g.generation), Type: metastore.GroupTypeConsumer,
	}
	saved := savedConsumerGroup{Assignor: cg.assignor, Subscribed: cg.subscribed, Members: []savedConsumerMember{}}
	for _, id := range cg.memberIDs() {
		m := cg.members[id]
		sg.Members = append(sg.Members, metastore.GroupMember{
			ID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			Protocols: []metastore.GroupProtocol{},
		})
		sm := savedConsumerMember{
			ID: m.id, InstanceID: m.instanceID, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.clientHost,
			Epoch: m.epoch, PrevEpoch: m.prevEpoch, State: int8(m.state),
			RebalanceTimeoutMs: m.rebalanceTimeout.Milliseconds(),
			Topics:             m.topics, Regex: m.regex, Assignor: m.assignor,
			Assigned: encodeParts(m.assigned), Revoking: encodeParts(m.revoking), Target: encodeParts(m.target),
		}
		if m.classic != nil {
			sm.Classic = &savedClassicMember{SessionTimeoutMs: m.classic.session.Milliseconds(), Protocols: m.classic.protocols}
		}
		saved.Members = append(saved.Members, sm)
	}
	sg.ConsumerState, _ = json.Marshal(saved) // plain data: cannot fail
	return sg
}

// restoreConsumer installs a saved consumer group. Members get a full
// session to find this coordinator; one revoking gets a full rebalance
// timeout to finish.
func (g *group) restoreConsumer(s metastore.Group) {
	cg := newConsumerGroup()
	g.consumer = cg
	var saved savedConsumerGroup
	if err := json.Unmarshal(s.ConsumerState, &saved); err != nil {
		g.c.log.Warn("saved consumer group does not decode; its members rejoin", "group", g.id, "err", err)
		return
	}
	cg.assignor = saved.Assignor
	if saved.Subscribed != nil {
		cg.subscribed = saved.Subscribed
	}
	now := time.Now()
	for _, sm := range saved.Members {
		m := &cmember{
			id: sm.ID, instanceID: sm.InstanceID, rackID: sm.RackID, clientID: sm.ClientID, clientHost: sm.ClientHost,
			epoch: sm.Epoch, prevEpoch: sm.PrevEpoch, state: memberState(sm.State),
			rebalanceTimeout: time.Duration(sm.RebalanceTimeoutMs) * time.Millisecond,
			topics:           sm.Topics, regex: sm.Regex, assignor: sm.Assignor,
			assigned: decodeParts(sm.Assigned), revoking: decodeParts(sm.Revoking), target: decodeParts(sm.Target),
		}
		if m.regex != "" {
			m.re, _ = compileSubscription(m.regex) // compiled when it was taken
		}
		if sm.Classic != nil && len(sm.Classic.Protocols) > 0 {
			m.classic = &classicMember{
				session:   time.Duration(sm.Classic.SessionTimeoutMs) * time.Millisecond,
				protocols: sm.Classic.Protocols,
			}
		}
		if m.state == memberUnrevoked {
			m.revokeBy = now.Add(m.rebalanceTimeout)
		}
		cg.members[m.id] = m
		if m.instanceID != "" {
			cg.statics[m.instanceID] = m.id
		}
		g.touchLocked(m)
	}
}
