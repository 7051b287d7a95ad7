package torture

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// logRec is one record of a partition as a reader got it.
type logRec struct {
	off     int64
	val     string
	control bool
	abort   bool  // a control record ending a transaction by aborting it
	pid     int64 // producer id
}

// recOf turns a client's record into a logRec.
func recOf(r *kgo.Record) logRec {
	// A control record's key is a version and a type (0 abort, 1 commit).
	abort := r.Attrs.IsControl() && len(r.Key) >= 4 && r.Key[2] == 0 && r.Key[3] == 0
	return logRec{off: r.Offset, val: string(r.Value), control: r.Attrs.IsControl(), abort: abort, pid: r.ProducerID}
}

// topicLog is a topic's records by partition, in offset order.
type topicLog map[int32][]logRec

// The three reads the checker compares.
const (
	readEvents   = "events"    // events, read_uncommitted
	readCopiedRU = "copied"    // copied, read_uncommitted, control records kept
	readCopiedRC = "copied/rc" // copied, read_committed, control records kept
)

// ends are a topic's end offsets by partition.
type ends map[int32]int64

// agentEnds asks one agent (not routed) for the high watermarks or, if
// committed, the last stable offsets of topic.
func agentEnds(ctx context.Context, b *kgo.Broker, topic string, committed bool) (ends, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	if committed {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := int32(0); p < partitions; p++ {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.CurrentLeaderEpoch = -1
		rp.Timestamp = -1 // latest
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := b.Request(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make(ends)
	for _, t := range resp.(*kmsg.ListOffsetsResponse).Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("list offsets %s/%d: %w", topic, p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	if len(out) != partitions {
		return nil, fmt.Errorf("list offsets %s: %d partitions answered", topic, len(out))
	}
	return out, nil
}

// readAgent reads partition p of topic from the start to end through one
// agent, with raw Fetch requests to that agent only.
func readAgent(ctx context.Context, b *kgo.Broker, topic string, topicID [16]byte, p int32, committed bool, end int64) ([]logRec, error) {
	iso, isoLevel := kgo.ReadUncommitted(), int8(0)
	if committed {
		iso, isoLevel = kgo.ReadCommitted(), 1
	}
	var out []logRec
	off := int64(0)
	stalls := 0
	for off < end {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 500
		req.MinBytes = 1
		req.MaxBytes = 8 << 20
		req.IsolationLevel = isoLevel
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, topicID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.FetchOffset = off
		rp.PartitionMaxBytes = 4 << 20
		rp.CurrentLeaderEpoch = -1
		rp.LogStartOffset = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := b.Request(ctx, req)
		if err != nil {
			return out, fmt.Errorf("fetch %s/%d at %d: %w", topic, p, off, err)
		}
		fr := resp.(*kmsg.FetchResponse)
		if err := kerr.ErrorForCode(fr.ErrorCode); err != nil {
			return out, fmt.Errorf("fetch %s/%d at %d: %w", topic, p, off, err)
		}
		var part *kmsg.FetchResponseTopicPartition
		for i := range fr.Topics {
			for j := range fr.Topics[i].Partitions {
				if fr.Topics[i].Partitions[j].Partition == p {
					part = &fr.Topics[i].Partitions[j]
				}
			}
		}
		if part == nil {
			return out, fmt.Errorf("fetch %s/%d at %d: partition missing from the response", topic, p, off)
		}
		if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
			return out, fmt.Errorf("fetch %s/%d at %d: %w", topic, p, off, err)
		}
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			KeepControlRecords: true, Offset: off, IsolationLevel: iso, Topic: topic, Partition: p,
		}, part, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			return out, fmt.Errorf("fetch %s/%d at %d: %w", topic, p, off, fp.Err)
		}
		for _, r := range fp.Records {
			out = append(out, recOf(r))
		}
		if next <= off {
			// Nothing at off although the agent says the log ends at
			// end or later: give it a while (it may still be loading),
			// then call it what it is.
			if stalls++; stalls > 20 {
				return out, fmt.Errorf("fetch %s/%d at %d: no progress (high watermark %d, end %d)", topic, p, off, part.HighWatermark, end)
			}
			continue
		}
		stalls = 0
		off = next
	}
	return out, nil
}

// readRouted reads topic from the start to want with an ordinary client
// that routes fetches to the partitions' leaders.
func readRouted(ctx context.Context, seeds []string, topic string, iso kgo.IsolationLevel, want ends) (topicLog, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("torture-checker"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso), kgo.KeepControlRecords())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := make(topicLog)
	next := make(ends)
	done := func() bool {
		for p, e := range want {
			if next[p] < e {
				return false
			}
		}
		return true
	}
	var lastErr error
	for !done() && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				lastErr = err
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
			out[r.Partition] = append(out[r.Partition], recOf(r))
		})
	}
	if !done() {
		return out, fmt.Errorf("routed read of %s reached %v, want %v (last error: %v)", topic, next, want, lastErr)
	}
	return out, nil
}

// topicIDs returns the ids of the topics, for Fetch v13+.
func topicIDs(ctx context.Context, seeds []string, topics ...string) (map[string][16]byte, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).Metadata(ctx, topics...)
	if err != nil {
		return nil, err
	}
	out := make(map[string][16]byte)
	for _, t := range topics {
		d, ok := md.Topics[t]
		if !ok || d.Err != nil {
			return nil, fmt.Errorf("metadata of %s: %v", t, d.Err)
		}
		out[t] = d.ID
	}
	return out, nil
}
