package agent

// CreateTopics, versions 0–7, validate-only honoured (v1+). Silt has no
// replication (the bucket is the replica), so any positive replication
// factor is accepted and reported as 1. What Kafka refuses is refused with
// Kafka's codes: a name given twice in one request (INVALID_REQUEST for
// that name, which is not created), an invalid name or one that collides
// with an existing topic once '.' and '_' are confused
// (INVALID_TOPIC_EXCEPTION), a replication factor or partition count that
// is 0 or below -1, a manual assignment with a replication factor or
// partition count other than -1 (INVALID_REQUEST), an assignment naming an
// agent that is not live, twice the same one or partitions that are not
// 0..n-1 (INVALID_REPLICA_ASSIGNMENT; see assignment.go), and unknown or
// invalid or null configs (INVALID_CONFIG). The internal topics already exist
// (TOPIC_ALREADY_EXISTS).

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleCreateTopics(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	az := a.access(c)
	createAny := az.cluster(metastore.OpCreate) // Kafka: CREATE on the cluster, or on each topic
	count := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		count[rt.Topic]++
	}
	answered := make(map[string]bool)
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.ReplicationFactor = 1
		if count[rt.Topic] > 1 {
			// Kafka answers a duplicated name once and creates nothing
			// under it.
			if !answered[rt.Topic] {
				answered[rt.Topic] = true
				st.ErrorCode, st.NumPartitions, st.ReplicationFactor = kerr.InvalidRequest.Code, -1, -1
				msg := "Duplicate topic name."
				st.ErrorMessage = &msg
				resp.Topics = append(resp.Topics, st)
			}
			continue
		}
		if !createAny && !az.topic(metastore.OpCreate, rt.Topic) {
			st.ErrorCode, st.NumPartitions, st.ReplicationFactor = kerr.TopicAuthorizationFailed.Code, -1, -1
			msg := kerr.TopicAuthorizationFailed.Message
			st.ErrorMessage = &msg
			resp.Topics = append(resp.Topics, st)
			continue
		}
		code, msg, created := a.createTopic(ctx, rt, req.ValidateOnly)
		st.ErrorCode = code
		if msg != "" {
			st.ErrorMessage = &msg
		}
		if code == 0 && !az.topic(metastore.OpDescribeConfigs, rt.Topic) {
			// Kafka: created, but the configs are not for this principal.
			st.TopicID, st.NumPartitions = created.ID, created.Partitions
			st.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code
		} else if code == 0 {
			st.TopicID = created.ID
			st.NumPartitions = created.Partitions
			names, values, isDefault := effectiveTopicConfig(created.Config)
			for _, n := range names {
				c := kmsg.NewCreateTopicsResponseTopicConfig()
				c.Name = n
				v := values[n]
				c.Value = &v
				c.Source = int8(kmsg.ConfigSourceDynamicTopicConfig)
				if isDefault[n] {
					c.Source = int8(kmsg.ConfigSourceDefaultConfig)
				}
				st.Configs = append(st.Configs, c)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return wire.Respond(resp)
}

func (a *Agent) createTopic(ctx context.Context, rt kmsg.CreateTopicsRequestTopic, validateOnly bool) (int16, string, metastore.Topic) {
	var none metastore.Topic
	if a.internal.byName(rt.Topic) != nil {
		// Kafka answers this for its internal topics, which always exist
		// there once used, as they always do here.
		return kerr.TopicAlreadyExists.Code, fmt.Sprintf("topic %q already exists", rt.Topic), none
	}
	if err := validateTopicName(rt.Topic); err != nil {
		return kerr.InvalidTopicException.Code, err.Error(), none
	}
	if other, ok := a.collidingTopic(rt.Topic); ok {
		return kerr.InvalidTopicException.Code, fmt.Sprintf("Topic '%s' collides with existing topic: %s", rt.Topic, other), none
	}
	n := rt.NumPartitions
	if len(rt.ReplicaAssignment) > 0 {
		if code, msg := a.checkTopicAssignment(rt); code != 0 {
			return code, msg, none
		}
		n = int32(len(rt.ReplicaAssignment))
	} else {
		if rt.ReplicationFactor < -1 || rt.ReplicationFactor == 0 {
			return kerr.InvalidReplicationFactor.Code, "replication factor must be positive or -1", none
		}
		if rt.NumPartitions < -1 || rt.NumPartitions == 0 {
			return kerr.InvalidPartitions.Code, "number of partitions must be positive or -1", none
		}
		if n == -1 {
			n = a.cfg.DefaultPartitions
		}
	}
	if n > maxPartitions {
		return kerr.InvalidPartitions.Code, fmt.Sprintf("partitions must be between 1 and %d", maxPartitions), none
	}
	cfg := make(map[string]string)
	for _, c := range rt.Configs {
		if c.Value == nil {
			return kerr.InvalidConfig.Code, "Null value not supported for topic configs: " + c.Name, none
		}
		if err := validateTopicConfig(c.Name, *c.Value); err != nil {
			return kerr.InvalidConfig.Code, err.Error(), none
		}
		cfg[c.Name] = *c.Value
	}
	if validateOnly {
		if _, err := a.topics.Get(ctx, rt.Topic); err == nil {
			return kerr.TopicAlreadyExists.Code, fmt.Sprintf("topic %q already exists", rt.Topic), none
		}
		return 0, "", metastore.Topic{Name: rt.Topic, Partitions: n, Config: cfg}
	}
	t, err := a.store.CreateTopic(ctx, metastore.TopicSpec{Name: rt.Topic, Partitions: n, Config: cfg})
	switch {
	case errors.Is(err, metastore.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code, fmt.Sprintf("topic %q already exists", rt.Topic), none
	case err != nil:
		a.log.Error("create topic", "topic", rt.Topic, "err", err)
		return kerr.UnknownServerError.Code, "metastore: " + err.Error(), none
	}
	a.topics.Put(t)
	a.log.Info("created topic", "topic", t.Name, "partitions", t.Partitions)
	return 0, "", t
}

// maxPartitions bounds a topic's partition count, so a request cannot make
// the agent allocate without limit.
const maxPartitions = 100000

// validateTopicName applies Kafka's rules: 1–249 characters of
// [a-zA-Z0-9._-], not "." or "..".
func validateTopicName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("topic name %q is not allowed", name)
	}
	if len(name) > 249 {
		return fmt.Errorf("topic name is longer than 249 characters")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q has a character other than [a-zA-Z0-9._-]", name)
		}
	}
	return nil
}

// checkTopicAssignment checks a CreateTopics manual assignment as Kafka's
// controller does: replication factor and partition count must be -1, and
// the assignments must cover partitions 0..n-1 once each with live agents.
func (a *Agent) checkTopicAssignment(rt kmsg.CreateTopicsRequestTopic) (int16, string) {
	if rt.ReplicationFactor != -1 {
		return kerr.InvalidRequest.Code, "A manual partition assignment was specified, but replication factor was not set to -1."
	}
	if rt.NumPartitions != -1 {
		return kerr.InvalidRequest.Code, "A manual partition assignment was specified, but numPartitions was not set to -1."
	}
	v := a.members.View()
	seen := make(map[int32]bool, len(rt.ReplicaAssignment))
	replicas := 0
	for _, as := range rt.ReplicaAssignment {
		if seen[as.Partition] {
			return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("Found multiple manual partition assignments for partition %d", as.Partition)
		}
		seen[as.Partition] = true
		if err := checkAssignment(v, as.Replicas, replicas); err != nil {
			return kerr.InvalidReplicaAssignment.Code, err.Error()
		}
		replicas = len(as.Replicas)
	}
	for i := range int32(len(seen)) {
		if !seen[i] {
			return kerr.InvalidReplicaAssignment.Code, "partitions should be a consecutive 0-based integer sequence"
		}
	}
	return 0, ""
}

// collidingTopic returns an existing topic whose name equals name once '.'
// and '_' are taken for the same character: Kafka refuses such a pair,
// because metric names confuse them.
func (a *Agent) collidingTopic(name string) (string, bool) {
	if !strings.ContainsAny(name, "._") {
		return "", false
	}
	unify := func(s string) string { return strings.ReplaceAll(s, ".", "_") }
	u := unify(name)
	for _, t := range a.topics.List() {
		if t.Name != name && unify(t.Name) == u {
			return t.Name, true
		}
	}
	return "", false
}
