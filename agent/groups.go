package agent

// What the agent gives the consumer-group coordinator (package group), and
// how its handlers answer requests the coordinator parks.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/group"
	"github.com/siltstream/silt/wire"
)

// partitionCount is the coordinator's view of topics: how many partitions
// one has, or an error wrapping metastore.ErrUnknownTopic.
func (a *Agent) partitionCount(ctx context.Context, topic string) (int, error) {
	t, err := a.topic(ctx, topic) // consumers of __consumer_offsets commit offsets too
	if err != nil {
		return 0, err
	}
	return len(t.Partitions), nil
}

// groupReply answers with resp, or, when the coordinator parked the
// request, with what parked delivers once the rebalance gets there.
func groupReply(resp kmsg.Response, parked <-chan kmsg.Response) wire.Reply {
	if parked == nil {
		return wire.Respond(resp)
	}
	return wire.Defer(func(ctx context.Context) kmsg.Response {
		select {
		case r := <-parked:
			return r
		case <-ctx.Done():
			return nil
		}
	})
}

// groupTopicsRefresh is how stale the topic list consumer groups resolve
// subscriptions from may be: a topic created on another agent joins the
// regex subscriptions that match it within about this long.
const groupTopicsRefresh = time.Second

// groupTopics lists the cluster's topics for consumer groups'
// subscriptions, rereading them from the store at most once per
// groupTopicsRefresh.
func (a *Agent) groupTopics(ctx context.Context) ([]group.TopicInfo, error) {
	a.groupTopicsMu.Lock()
	stale := time.Since(a.groupTopicsAt) >= groupTopicsRefresh
	if stale {
		a.groupTopicsAt = time.Now()
	}
	a.groupTopicsMu.Unlock()
	if stale {
		if err := a.topics.Refresh(ctx); err != nil {
			a.log.Warn("consumer groups: refresh topics", "err", err)
		}
	}
	ts := a.topics.List()
	out := make([]group.TopicInfo, 0, len(ts)+1)
	// Internal topics too: Kafka resolves regexes over every topic, so
	// a regex naming __consumer_offsets subscribes to it.
	for _, it := range a.internal.sorted() {
		out = append(out, group.TopicInfo{Name: it.topic.Name, ID: it.topic.ID, Partitions: len(it.topic.Partitions)})
	}
	for _, t := range ts {
		if a.internal.byName(t.Name) == nil {
			out = append(out, group.TopicInfo{Name: t.Name, ID: t.ID, Partitions: len(t.Partitions)})
		}
	}
	return out, nil
}
