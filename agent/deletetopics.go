package agent

// DeleteTopics, versions 0–6 (by name, and by topic id from v6).

import (
	"context"
	"errors"

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
			t, err := a.topics.GetByID(ctx, tg.id)
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
		}
		resp.Topics = append(resp.Topics, st)
	}
	return wire.Respond(resp)
}
