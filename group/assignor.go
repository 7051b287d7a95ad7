package group

// Server-side assignors of consumer groups: "uniform" (the default, as in
// Kafka) and "range". Both are pure functions of the members'
// subscriptions and the subscribed topics; uniform also keeps each
// member's previous target where that stays balanced.

import (
	"sort"

	"github.com/siltstream/silt/metastore"
)

// Assignor names ConsumerGroupHeartbeat accepts (ServerAssignor).
const (
	AssignorUniform = "uniform"
	AssignorRange   = "range"
)

// supportedAssignor reports whether the coordinator has the assignor.
func supportedAssignor(name string) bool {
	return name == AssignorUniform || name == AssignorRange
}

// topicInfo is one subscribed topic as the assignors see it.
type topicInfo struct {
	name       string
	id         metastore.TopicID
	partitions int32
}

// assignInput is what an assignor works from: members in id order, the
// topics any of them subscribes to in name order.
type assignInput struct {
	members []*cmember
	topics  []topicInfo
}

// assign computes the target assignment with the named assignor.
func assign(name string, in assignInput) map[string]partSet {
	if name == AssignorRange {
		return assignRange(in)
	}
	return assignUniform(in)
}

// assignRange gives each topic's partitions to its subscribers in
// contiguous ranges, the first ones one partition more when they do not
// divide evenly (Kafka's RangeAssignor, per topic).
func assignRange(in assignInput) map[string]partSet {
	out := make(map[string]partSet, len(in.members))
	for _, m := range in.members {
		out[m.id] = make(partSet)
	}
	for _, t := range in.topics {
		var subs []*cmember
		for _, m := range in.members {
			if m.subscribes(t.name) {
				subs = append(subs, m)
			}
		}
		if len(subs) == 0 {
			continue
		}
		n := int32(len(subs))
		per, extra := t.partitions/n, t.partitions%n
		p := int32(0)
		for i, m := range subs {
			k := per
			if int32(i) < extra {
				k++
			}
			for j := int32(0); j < k; j++ {
				out[m.id][tp{t.id, p}] = struct{}{}
				p++
			}
		}
	}
	return out
}

// assignUniform spreads all subscribed partitions so that member counts
// differ by at most one where subscriptions allow, keeping partitions
// with their previous target owner as far as that stays balanced.
func assignUniform(in assignInput) map[string]partSet {
	out := make(map[string]partSet, len(in.members))
	byID := make(map[string]*cmember, len(in.members))
	for _, m := range in.members {
		out[m.id] = make(partSet)
		byID[m.id] = m
	}
	if len(in.members) == 0 {
		return out
	}
	var all []tp
	subs := make(map[metastore.TopicID][]*cmember)
	total := 0
	for _, t := range in.topics {
		for _, m := range in.members {
			if m.subscribes(t.name) {
				subs[t.id] = append(subs[t.id], m)
			}
		}
		if len(subs[t.id]) == 0 {
			continue
		}
		for p := int32(0); p < t.partitions; p++ {
			all = append(all, tp{t.id, p})
		}
		total += int(t.partitions)
	}
	// Every member may hold up to the ceiling of an even share; with
	// homogeneous subscriptions that is already balanced.
	ceil := (total + len(in.members) - 1) / len(in.members)
	var free []tp
	for _, p := range all {
		kept := false
		for _, m := range subs[p.t] {
			if _, ok := m.target[p]; ok && len(out[m.id]) < ceil {
				out[m.id][p] = struct{}{}
				kept = true
				break
			}
		}
		if !kept {
			free = append(free, p)
		}
	}
	for _, p := range free {
		var best *cmember
		for _, m := range subs[p.t] {
			if best == nil || len(out[m.id]) < len(out[best.id]) {
				best = m
			}
		}
		out[best.id][p] = struct{}{}
	}
	// Even out what the ceiling left uneven: move a partition from a
	// member holding two or more beyond another subscriber of it. Each
	// move lowers the sum of squares of member counts, so this ends;
	// the bound only guards against a mistake.
	for range total + 1 {
		moved := false
		for _, p := range all {
			from := ""
			for _, m := range subs[p.t] {
				if _, ok := out[m.id][p]; ok {
					from = m.id
					break
				}
			}
			for _, m := range subs[p.t] {
				if from != "" && len(out[m.id])+1 < len(out[from]) {
					delete(out[from], p)
					out[m.id][p] = struct{}{}
					moved = true
					break
				}
			}
		}
		if !moved {
			break
		}
	}
	return out
}

// sortTopics orders topics by name.
func sortTopics(ts []topicInfo) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
}
