package agent

// DeleteRecords, versions 0–2: moves partitions' log start offsets, as
// kafka-delete-records and kadm's DeleteRecords ask. Kafka's rules: offset
// -1 means the high watermark; an offset above it, or another negative
// one, is OFFSET_OUT_OF_RANGE; the log start offset never moves backwards;
// a topic whose cleanup.policy lacks delete answers POLICY_VIOLATION; the
// answer is the new low watermark (the log start offset). Authorization is
// DELETE on the topic. Index rows below the new log start are pruned at
// once; their objects are deleted by the garbage collector after gc.grace.
// Other agents learn the new log start from the store's notification, or
// re-read it before answering out of range.

import (
	"context"
	"errors"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/partition"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleDeleteRecords(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	az := a.access(c)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		var (
			code  int16
			topic *partition.Topic
			err   error
		)
		if !az.topic(metastore.OpDelete, rt.Topic) {
			code = kerr.TopicAuthorizationFailed.Code
		} else if topic, err = a.topics.Get(ctx, rt.Topic); err != nil {
			code = errorCode(err)
		} else if !strings.Contains(topicConfigValue(topic.Config, "cleanup.policy"), "delete") {
			code = kerr.PolicyViolation.Code // as Kafka: a compacted log keeps its offsets
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark, sp.ErrorCode = rp.Partition, -1, code
			if code == 0 {
				sp.LowWatermark, sp.ErrorCode = a.deleteRecords(ctx, topic.Name, topic.Partition(rp.Partition), rp.Offset)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return wire.Respond(resp)
}

// deleteRecords moves one partition's log start offset and answers the low
// watermark and error code.
func (a *Agent) deleteRecords(ctx context.Context, topic string, p *partition.Partition, offset int64) (int64, int16) {
	if p == nil {
		return -1, kerr.UnknownTopicOrPartition.Code
	}
	logStart, err := a.store.AdvanceLogStart(ctx, p.TP, offset)
	switch {
	case errors.Is(err, metastore.ErrOffsetOutOfRange):
		return -1, kerr.OffsetOutOfRange.Code
	case err != nil:
		a.log.Warn("delete records", "topic", topic, "partition", p.Index, "offset", offset, "err", err)
		return -1, errorCode(err)
	}
	a.topics.LogStartMoved(p.TP, logStart)
	return logStart, 0
}

// topicConfigValue is a topic's config value, or Kafka's default.
func topicConfigValue(config map[string]string, name string) string {
	if v, ok := config[name]; ok {
		return v
	}
	d, _ := lookupTopicConfig(name)
	return d.def
}
