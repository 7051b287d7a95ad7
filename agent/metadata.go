package agent

// Metadata, versions 0–12. In v0 an empty topic list asks for every topic
// (null, which v1+ uses for that, does not exist in v0).
//
// Every live agent is a broker. Each partition is led by the agent chosen by
// rendezvous hashing among the live agents — among those in the client's
// zone when the client names one (silt_az=<zone> in its client.id) — with
// the membership epoch as leader epoch. Leadership routes clients and keeps
// caches warm; any agent accepts produce and fetch for any partition. A
// requested topic that does not exist is created when auto.create.topics is
// on and the client allows it (v4+ AllowAutoTopicCreation), unless its name
// starts with "__" (see internaltopics.go); as Kafka, the request that
// creates it is answered LEADER_NOT_AVAILABLE without partitions, and the
// client asks again. So a topic just deleted is not listed with partitions
// by the next Metadata request, even one that re-creates it. The internal
// topics are listed with IsInternal. Every answer re-reads the topic list
// from the store first (the cache hears of topics grown through other
// agents only at its periodic refresh), so partitions just added through
// any agent are listed by every agent.
//
// Each client is told the brokers' addresses on the listener it connected
// through; agents that do not serve that listener are left out, as Kafka
// does, and partitions are led by agents that do (Silt can: any agent
// serves any partition).
//
// With ACLs (as Kafka): a topic the principal may not DESCRIBE is left out
// of an all-topics answer and answers TOPIC_AUTHORIZATION_FAILED when
// named, whether it exists or not; auto-creation needs CREATE on the
// cluster or on the topic (else TOPIC_AUTHORIZATION_FAILED).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/siltstream/silt/cluster"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/partition"
	"github.com/siltstream/silt/wire"
)

// namedTopicsRefreshTimeout bounds the topic listing a Metadata request
// naming topics reads first.
const namedTopicsRefreshTimeout = 2 * time.Second

func (a *Agent) handleMetadata(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	v := a.viewFor(c) // the brokers as the listener c came in on advertises them
	zone := cluster.ClientZone(c.ClientID())
	az := a.access(c)
	resp.Brokers = brokersOf(v)
	resp.ClusterID = &a.cfg.ClusterID
	resp.ControllerID = v.CoordinatorFor("controller").NodeID

	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		if err := a.topics.RefreshFresh(ctx); err != nil {
			a.log.Warn("metadata: refresh topics", "err", err)
		}
		for _, it := range a.internal.sorted() {
			if az.topic(metastore.OpDescribe, it.topic.Name) {
				resp.Topics = append(resp.Topics, topicMetadata(v, zone, it.topic))
			}
		}
		for _, t := range a.topics.List() {
			if a.internal.byName(t.Name) == nil && az.topic(metastore.OpDescribe, t.Name) {
				resp.Topics = append(resp.Topics, topicMetadata(v, zone, t))
			}
		}
		a.metadataOperations(az, req, resp)
		return wire.Respond(resp)
	}
	// The cache learns of topics grown or re-configured through other
	// agents only at its periodic refresh; a client that just added
	// partitions through one agent asks any agent for them next (kafkajs'
	// admin does). One listing refreshes every named topic, as above;
	// bounded, so a store that does not answer leaves the cached topics
	// to answer with instead of holding the clients that look for leaders.
	// Concurrent requests share listings (RefreshFresh), so their cost
	// does not grow with the number of clients.
	rctx, cancel := context.WithTimeout(ctx, namedTopicsRefreshTimeout)
	if err := a.topics.RefreshFresh(rctx); err != nil {
		a.log.Warn("metadata: refresh topics", "err", err)
	}
	cancel()
	allowCreate := a.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var t *partition.Topic
		var err error
		if rt.Topic == nil {
			t, err = a.topicByID(ctx, rt.TopicID)
			if err != nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			if !az.topic(metastore.OpDescribe, t.Name) {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID // ids are not secret; the name is
				mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		} else {
			name := *rt.Topic
			err = kerr.TopicAuthorizationFailed
			if az.topic(metastore.OpDescribe, name) {
				t, err = a.topic(ctx, name)
			}
			if errors.Is(err, metastore.ErrUnknownTopic) && allowCreate && !reservedTopicName(name) {
				err = kerr.TopicAuthorizationFailed
				if az.cluster(metastore.OpCreate) || az.topic(metastore.OpCreate, name) {
					if _, err = a.autoCreate(ctx, name); err == nil {
						err = kerr.LeaderNotAvailable
					}
				}
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
	a.metadataOperations(az, req, resp)
	return wire.Respond(resp)
}

// metadataOperations fills the authorized operations the request asks
// for (KIP-430), with authorizer=acl.
func (a *Agent) metadataOperations(az access, req *kmsg.MetadataRequest, resp *kmsg.MetadataResponse) {
	if az.az == nil {
		return
	}
	if req.IncludeClusterAuthorizedOperations && req.Version <= 10 {
		resp.AuthorizedOperations = az.clusterOperations()
	}
	if req.IncludeTopicAuthorizedOperations {
		for i := range resp.Topics {
			if t := &resp.Topics[i]; t.ErrorCode == 0 && t.Topic != nil {
				t.AuthorizedOperations = az.topicOperations(*t.Topic)
			}
		}
	}
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
func (a *Agent) autoCreate(ctx context.Context, name string) (*partition.Topic, error) {
	if reservedTopicName(name) {
		return nil, fmt.Errorf("auto-create %s: reserved name: %w", name, metastore.ErrUnknownTopic)
	}
	if err := validateTopicName(name); err != nil {
		return nil, kerr.InvalidTopicException
	}
	t, err := a.store.CreateTopic(ctx, metastore.TopicSpec{Name: name, Partitions: a.cfg.DefaultPartitions})
	if errors.Is(err, metastore.ErrTopicExists) {
		return a.topics.Get(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	a.log.Info("auto-created topic", "topic", name, "partitions", t.Partitions)
	return a.topics.Put(t), nil
}

func brokersOf(v *cluster.View) []kmsg.MetadataResponseBroker {
	out := make([]kmsg.MetadataResponseBroker, 0, len(v.Brokers))
	for _, br := range v.Brokers {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = br.NodeID, br.Host, br.Port
		if br.Zone != "" {
			b.Rack = &br.Zone
		}
		out = append(out, b)
	}
	return out
}

func topicMetadata(v *cluster.View, zone string, t *partition.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = t.Name == consumerOffsetsTopic || t.Name == transactionStateTopic
	for _, p := range t.Partitions {
		leader := v.LeaderFor(p.TP, zone).NodeID
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.Index
		mp.Leader = leader
		mp.LeaderEpoch = v.LeaderEpoch()
		// The bucket is the replica: one leader, always in sync.
		mp.Replicas = []int32{leader}
		mp.ISR = []int32{leader}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
