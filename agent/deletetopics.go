package agent

// DeleteTopics, versions 0–6 (by name, and by topic id from v6). Internal
// topics cannot be deleted (INVALID_TOPIC_EXCEPTION).
//
// The answer waits, up to the request's timeout, until every live agent
// has dropped the deleted topics (acknowledged their deletion, see package
// partition), so that once a client has its answer no agent lists them any
// more. A deletion that is not acknowledged in time is still committed; its
// topic answers REQUEST_TIMED_OUT, as Kafka answers a deletion that did not
// complete within the timeout.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleDeleteTopics(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	az := a.access(c)
	type target struct {
		name *string
		id   metastore.TopicID
	}
	var targets []target
	deleted := make(map[string]*kmsg.DeleteTopicsResponseTopic)
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{name: t.Topic, id: t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			targets = append(targets, target{name: &n})
		}
	}
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		var name string
		switch {
		case tg.name != nil:
			name = *tg.name
		default:
			t, err := a.topicByID(ctx, tg.id)
			if err != nil {
				st.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
			name = t.Name
			if !az.topic(metastore.OpDescribe, name) {
				// Kafka: by id, a topic the principal may not describe
				// is not named in the answer.
				st.ErrorCode = kerr.TopicAuthorizationFailed.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
			st.Topic = &t.Name
		}
		if !az.topic(metastore.OpDelete, name) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if a.internal.byName(name) != nil {
			// Its records are the committed offsets (or nothing): there is
			// no log to delete.
			st.ErrorCode = kerr.InvalidTopicException.Code
			msg := "internal topic " + name + " cannot be deleted"
			st.ErrorMessage = &msg
			resp.Topics = append(resp.Topics, st)
			continue
		}
		err := a.store.DeleteTopic(ctx, name)
		switch {
		case errors.Is(err, metastore.ErrUnknownTopic):
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		case err != nil:
			a.log.Error("delete topic", "topic", name, "err", err)
			st.ErrorCode = kerr.UnknownServerError.Code
			msg := err.Error()
			st.ErrorMessage = &msg
		default:
			a.topics.Drop(name)
			a.log.Info("deleted topic", "topic", name)
			deleted[name] = nil
		}
		resp.Topics = append(resp.Topics, st)
	}
	w, ok := a.store.(metastore.CommitWatcher)
	if !ok || len(deleted) == 0 {
		return wire.Respond(resp) // one agent: dropped from its cache above
	}
	for i := range resp.Topics {
		if st := &resp.Topics[i]; st.ErrorCode == 0 && st.Topic != nil {
			deleted[*st.Topic] = st
		}
	}
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return wire.Defer(func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		for name, st := range deleted {
			if !a.awaitDeletionSeen(ctx, w, name) {
				st.ErrorCode = kerr.RequestTimedOut.Code
			}
		}
		return resp
	})
}

// deletionSeenPoll is how often DeleteTopics asks whether every agent has
// acknowledged a deletion; agents do within a notification's round trip.
const deletionSeenPoll = 10 * time.Millisecond

// awaitDeletionSeen waits until every live agent has acknowledged the
// deletion of name, or ctx ends; it reports whether they did.
func (a *Agent) awaitDeletionSeen(ctx context.Context, w metastore.CommitWatcher, name string) bool {
	t := time.NewTicker(deletionSeenPoll)
	defer t.Stop()
	for {
		seen, err := w.TopicDeletionSeen(ctx, name)
		if err == nil && seen {
			return true
		}
		if err != nil && ctx.Err() == nil {
			a.log.Warn("delete topics: deletion acknowledgements", "topic", name, "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}
