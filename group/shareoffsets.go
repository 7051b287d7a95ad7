package group

// The share group offset admin APIs (KIP-932): DescribeShareGroupOffsets
// versions 0–1, AlterShareGroupOffsets and DeleteShareGroupOffsets
// version 0. A share group's "offset" of a partition is its
// share-partition start offset (SPSO), kept with the records' states in
// the ShareStore; a partition the group never fetched has none (-1).
//
// Errors as Kafka answers them: INVALID_GROUP_ID for an empty id;
// GROUP_ID_NOT_FOUND for a group of another type, or (Delete) one that
// does not exist; NON_EMPTY_GROUP for Alter or Delete while the group has
// members; UNKNOWN_TOPIC_OR_PARTITION per partition or topic.
// AlterShareGroupOffsets on a group that does not exist creates it, empty,
// as Kafka does. Lag (v1) is the high watermark less the SPSO and the
// records at or above the SPSO already acknowledged or archived.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
)

// shareAdminGroupLocked checks that g may have its share offsets
// administered: a share group (or, with create, no group yet, which
// becomes an empty share group), without members when empty is asked.
func (g *group) shareAdminGroupLocked(create, empty bool) int16 {
	switch {
	case g.unloaded:
		return kerr.NotCoordinator.Code
	case g.share == nil && (g.consumer != nil || g.exists()):
		return kerr.GroupIDNotFound.Code
	case g.share == nil && !create:
		return kerr.GroupIDNotFound.Code
	case g.share == nil:
		g.share = newShareGroup()
	case empty && len(g.share.members) > 0:
		return kerr.NonEmptyGroup.Code
	}
	return 0
}

// DescribeShareGroupOffsets answers the groups the request names.
func (c *Coordinator) DescribeShareGroupOffsets(ctx context.Context, req *kmsg.DescribeShareGroupOffsetsRequest) *kmsg.DescribeShareGroupOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
	for _, rg := range req.Groups {
		resp.Groups = append(resp.Groups, c.describeShareOffsets(ctx, rg))
	}
	return resp
}

func (c *Coordinator) describeShareOffsets(ctx context.Context, rg kmsg.DescribeShareGroupOffsetsRequestGroup) kmsg.DescribeShareGroupOffsetsResponseGroup {
	out := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
	out.GroupID = rg.GroupID
	if rg.GroupID == "" {
		out.ErrorCode = kerr.InvalidGroupID.Code
		return out
	}
	g, code := c.acquire(ctx, rg.GroupID)
	if code != 0 {
		out.ErrorCode = code
		return out
	}
	g.mu.Lock()
	code = g.shareAdminGroupLocked(false, false)
	g.mu.Unlock()
	if code != 0 {
		out.ErrorCode = code
		return out
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	stored, err := c.store.SharePartitions(sctx, rg.GroupID)
	if err != nil {
		c.log.Warn("describe share group offsets", "group", rg.GroupID, "err", err)
		out.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return out
	}
	byKey := make(map[tp]metastore.SharePartitionState, len(stored))
	for _, st := range stored {
		byKey[tp{st.Key.Topic, st.Key.Partition}] = st
	}
	partition := func(t TopicInfo, p int32) kmsg.DescribeShareGroupOffsetsResponseGroupTopicPartition {
		rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
		rp.Partition, rp.StartOffset, rp.LeaderEpoch, rp.Lag = p, -1, -1, -1
		if p < 0 || int(p) >= t.Partitions {
			rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			return rp
		}
		st, ok := byKey[tp{t.ID, p}]
		if !ok {
			return rp
		}
		rp.StartOffset = st.StartOffset
		if c.highWatermark != nil {
			if hw, err := c.highWatermark(ctx, t.ID, p); err == nil {
				done := int64(0)
				for _, b := range st.Batches {
					if b.State == metastore.ShareAcknowledged || b.State == metastore.ShareArchived {
						done += b.Last - b.First + 1
					}
				}
				rp.Lag = max(0, hw-st.StartOffset-done)
			}
		}
		return rp
	}
	if rg.Topics == nil {
		// Every partition the group has state for, by topic.
		var infos []TopicInfo
		if c.topics != nil {
			infos, _ = c.topics(ctx)
		}
		for _, t := range infos {
			var ot *kmsg.DescribeShareGroupOffsetsResponseGroupTopic
			for _, st := range stored {
				if st.Key.Topic != t.ID {
					continue
				}
				if ot == nil {
					nt := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
					nt.Topic, nt.TopicID = t.Name, t.ID
					out.Topics = append(out.Topics, nt)
					ot = &out.Topics[len(out.Topics)-1]
				}
				ot.Partitions = append(ot.Partitions, partition(t, st.Key.Partition))
			}
		}
		return out
	}
	for _, rt := range rg.Topics {
		ot := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
		ot.Topic = rt.Topic
		t, err := c.shareTopic(ctx, rt.Topic)
		for _, p := range rt.Partitions {
			if err != nil {
				rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
				rp.Partition, rp.StartOffset, rp.LeaderEpoch, rp.Lag = p, -1, -1, -1
				rp.ErrorCode = topicErrorCode(err)
				ot.Partitions = append(ot.Partitions, rp)
				continue
			}
			ot.TopicID = t.ID
			ot.Partitions = append(ot.Partitions, partition(t, p))
		}
		out.Topics = append(out.Topics, ot)
	}
	return out
}

// shareTopic resolves a topic by name for the share offset APIs.
func (c *Coordinator) shareTopic(ctx context.Context, name string) (TopicInfo, error) {
	if c.topicByName != nil {
		return c.topicByName(ctx, name)
	}
	return TopicInfo{}, metastore.ErrUnknownTopic
}

func topicErrorCode(err error) int16 {
	if errors.Is(err, metastore.ErrUnknownTopic) {
		return kerr.UnknownTopicOrPartition.Code
	}
	return kerr.CoordinatorNotAvailable.Code
}

// AlterShareGroupOffsets sets the SPSO of partitions of an empty share
// group.
func (c *Coordinator) AlterShareGroupOffsets(ctx context.Context, req *kmsg.AlterShareGroupOffsetsRequest) *kmsg.AlterShareGroupOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
	fail := func(code int16) *kmsg.AlterShareGroupOffsetsResponse {
		resp.ErrorCode = code
		for _, rt := range req.Topics {
			ot := kmsg.NewAlterShareGroupOffsetsResponseTopic()
			ot.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				op := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
				op.Partition, op.ErrorCode = rp.Partition, code
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		}
		return resp
	}
	if req.GroupID == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	g, code := c.acquire(ctx, req.GroupID)
	if code != 0 {
		return fail(code)
	}
	// Hold the group while writing, so no member joins in between.
	g.mu.Lock()
	defer g.mu.Unlock()
	if code := g.shareAdminGroupLocked(true, true); code != 0 {
		return fail(code)
	}
	if g.savedGen == 0 && !g.saveLocked() { // a new, empty share group
		return fail(kerr.NotCoordinator.Code)
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	for _, rt := range req.Topics {
		ot := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		ot.Topic = rt.Topic
		t, err := c.shareTopic(ctx, rt.Topic)
		for _, rp := range rt.Partitions {
			op := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			switch {
			case err != nil:
				op.ErrorCode = topicErrorCode(err)
			case rp.Partition < 0 || int(rp.Partition) >= t.Partitions:
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.StartOffset < 0:
				op.ErrorCode = kerr.InvalidRequest.Code
			default:
				ot.TopicID = t.ID
				key := metastore.SharePartitionKey{Group: req.GroupID, Topic: t.ID, Partition: rp.Partition}
				if serr := c.store.SetShareStartOffset(sctx, key, rp.StartOffset); serr != nil {
					c.log.Warn("alter share group offsets", "group", req.GroupID, "err", serr)
					op.ErrorCode = kerr.CoordinatorNotAvailable.Code
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}

// DeleteShareGroupOffsets forgets the share partitions of whole topics of
// an empty share group.
func (c *Coordinator) DeleteShareGroupOffsets(ctx context.Context, req *kmsg.DeleteShareGroupOffsetsRequest) *kmsg.DeleteShareGroupOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
	fail := func(code int16) *kmsg.DeleteShareGroupOffsetsResponse {
		resp.ErrorCode = code
		return resp
	}
	if req.GroupID == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	g, code := c.acquire(ctx, req.GroupID)
	if code != 0 {
		return fail(code)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if code := g.shareAdminGroupLocked(false, true); code != 0 {
		return fail(code)
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	stored, err := c.store.SharePartitions(sctx, req.GroupID)
	if err != nil {
		c.log.Warn("delete share group offsets", "group", req.GroupID, "err", err)
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		ot.Topic = rt.Topic
		t, err := c.shareTopic(ctx, rt.Topic)
		if err != nil {
			ot.ErrorCode = topicErrorCode(err)
			resp.Topics = append(resp.Topics, ot)
			continue
		}
		ot.TopicID = t.ID
		var keys []metastore.SharePartitionKey
		for _, st := range stored {
			if st.Key.Topic == t.ID {
				keys = append(keys, st.Key)
			}
		}
		if len(keys) > 0 {
			if err := c.store.DeleteSharePartitions(sctx, req.GroupID, keys); err != nil {
				c.log.Warn("delete share group offsets", "group", req.GroupID, "err", err)
				ot.ErrorCode = kerr.CoordinatorNotAvailable.Code
			}
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}
