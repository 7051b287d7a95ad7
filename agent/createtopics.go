package agent

// CreateTopics, versions 0–7, validate-only honoured (v1+). Silt has no
// replication (the bucket is the replica), so any replication factor is
// accepted and reported as 1; manual replica assignments are rejected.

import (
	"context"
	"errors"
	"fmt"

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
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.ReplicationFactor = 1
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
	if err := validateTopicName(rt.Topic); err != nil {
		return kerr.InvalidTopicException.Code, err.Error(), none
	}
	if len(rt.ReplicaAssignment) > 0 {
		return kerr.InvalidReplicaAssignment.Code, "Silt does not place replicas; omit the assignment", none
	}
	n := rt.NumPartitions
	if n == -1 {
		n = a.cfg.DefaultPartitions
	}
	if n < 1 || n > maxPartitions {
		return kerr.InvalidPartitions.Code, fmt.Sprintf("partitions must be between 1 and %d", maxPartitions), none
	}
	if rt.ReplicationFactor < -1 || rt.ReplicationFactor == 0 {
		return kerr.InvalidReplicationFactor.Code, "replication factor must be positive or -1", none
	}
	cfg := make(map[string]string)
	for _, c := range rt.Configs {
		if c.Value == nil {
			continue
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
