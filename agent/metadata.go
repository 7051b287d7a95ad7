package agent

// Metadata, versions 1–12.
//
// Every live agent is a broker. Each partition is led by the agent chosen by
// rendezvous hashing among the live agents — among those in the client's
// zone when the client names one (silt_az=<zone> in its client.id) — with
// the membership epoch as leader epoch. Leadership routes clients and keeps
// caches warm; any agent accepts produce and fetch for any partition. A
// requested topic that does not exist is created when auto.create.topics is
// on and the client allows it (v4+ AllowAutoTopicCreation).

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleMetadata(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	v := a.members.view()
	zone := clientZone(c.ClientID())
	resp.Brokers = brokersOf(v)
	resp.ClusterID = &a.cfg.ClusterID
	resp.ControllerID = a.coordinatorFor("controller").nodeID

	if req.Topics == nil {
		if err := a.topics.refresh(ctx); err != nil {
			a.log.Warn("metadata: refresh topics", "err", err)
		}
		for _, t := range a.topics.list() {
			resp.Topics = append(resp.Topics, topicMetadata(v, zone, t))
		}
		return wire.Respond(resp)
	}
	allowCreate := a.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var t *topicState
		var err error
		if rt.Topic == nil {
			t, err = a.topics.getByID(ctx, rt.TopicID)
			if err != nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		} else {
			name := *rt.Topic
			t, err = a.topics.get(ctx, name)
			if errors.Is(err, metastore.ErrUnknownTopic) && allowCreate {
				t, err = a.autoCreate(ctx, name)
			}
			if err != nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = &name
				mt.ErrorCode = metadataErrorCode(err)
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		}
		resp.Topics = append(resp.Topics, topicMetadata(v, zone, t))
	}
	return wire.Respond(resp)
}

func metadataErrorCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, metastore.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	default:
		return kerr.UnknownServerError.Code
	}
}

// autoCreate creates a topic with broker defaults, tolerating a concurrent
// creation of the same topic.
func (a *Agent) autoCreate(ctx context.Context, name string) (*topicState, error) {
	if err := validateTopicName(name); err != nil {
		return nil, kerr.InvalidTopicException
	}
	t, err := a.store.CreateTopic(ctx, metastore.TopicSpec{Name: name, Partitions: a.cfg.DefaultPartitions})
	if errors.Is(err, metastore.ErrTopicExists) {
		return a.topics.get(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	a.log.Info("auto-created topic", "topic", name, "partitions", t.Partitions)
	return a.topics.put(t), nil
}

func brokersOf(v *view) []kmsg.MetadataResponseBroker {
	out := make([]kmsg.MetadataResponseBroker, 0, len(v.brokers))
	for _, br := range v.brokers {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = br.nodeID, br.host, br.port
		if br.zone != "" {
			b.Rack = &br.zone
		}
		out = append(out, b)
	}
	return out
}

func topicMetadata(v *view, zone string, t *topicState) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.name
	mt.Topic = &name
	mt.TopicID = t.id
	for _, p := range t.parts {
		leader := v.leaderFor(p.tp, zone).nodeID
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.index
		mp.Leader = leader
		mp.LeaderEpoch = leaderEpoch(v)
		// The bucket is the replica: one leader, always in sync.
		mp.Replicas = []int32{leader}
		mp.ISR = []int32{leader}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// leaderEpoch is the membership epoch as Kafka's int32 leader epoch.
func leaderEpoch(v *view) int32 { return int32(v.epoch & 0x7fffffff) }
