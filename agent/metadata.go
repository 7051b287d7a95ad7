package agent

// Metadata, versions 1–12.
//
// Every live agent is a broker; for now this agent lists itself and leads
// every partition with leader epoch 0 (cluster membership is issue 4). A
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

func (a *Agent) handleMetadata(ctx context.Context, _ *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = a.brokers()
	resp.ClusterID = &a.cfg.ClusterID
	resp.ControllerID = a.nodeID

	if req.Topics == nil {
		if err := a.topics.refresh(ctx); err != nil {
			a.log.Warn("metadata: refresh topics", "err", err)
		}
		for _, t := range a.topics.list() {
			resp.Topics = append(resp.Topics, a.topicMetadata(t))
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
		resp.Topics = append(resp.Topics, a.topicMetadata(t))
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

func (a *Agent) brokers() []kmsg.MetadataResponseBroker {
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = a.nodeID, a.host, a.port
	if a.cfg.Zone != "" {
		b.Rack = &a.cfg.Zone
	}
	return []kmsg.MetadataResponseBroker{b}
}

func (a *Agent) topicMetadata(t *topicState) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.name
	mt.Topic = &name
	mt.TopicID = t.id
	for _, p := range t.parts {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.index
		mp.Leader = a.nodeID
		mp.LeaderEpoch = 0
		mp.Replicas = []int32{a.nodeID}
		mp.ISR = []int32{a.nodeID}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
