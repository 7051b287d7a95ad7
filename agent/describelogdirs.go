package agent

// DescribeLogDirs, versions 0–4 (consoles show topic sizes from it).
//
// An agent has one "log dir", the bucket, and holds each partition it
// leads: Metadata lists a partition's leader as its only replica, so a
// partition is described by that one agent and a tool adding up every
// broker's answer counts each byte once. A partition's size is the bytes
// its index rows hold in the bucket (what retention has not removed); its
// offset lag is 0 (no follower catches up). Topics or partitions named
// that do not exist, or that another agent leads, are left out, as Kafka
// leaves out partitions a broker does not host. DESCRIBE on the cluster is
// required (v3+: CLUSTER_AUTHORIZATION_FAILED, and no dirs).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/cluster"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/partition"
	"github.com/siltstream/silt/wire"
)

// logDirName names the bucket as the agent's one log dir.
const logDirName = "bucket"

func (a *Agent) handleDescribeLogDirs(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if !a.access(c).cluster(metastore.OpDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return wire.Respond(resp)
	}
	// The partitions asked for, by topic; nil partitions: all of them.
	type ask struct {
		t     *partition.Topic
		parts []int32
	}
	var asks []ask
	if req.Topics == nil {
		if err := a.topics.Refresh(ctx); err != nil {
			a.log.Warn("describe log dirs: refresh topics", "err", err)
		}
		for _, t := range a.topics.List() {
			asks = append(asks, ask{t: t})
		}
	} else {
		for _, rt := range req.Topics {
			if t, err := a.topics.Get(ctx, rt.Topic); err == nil {
				asks = append(asks, ask{t: t, parts: rt.Partitions})
			}
		}
	}
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = logDirName
	dir.TotalBytes, dir.UsableBytes = -1, -1 // a bucket has no volume size
	v := a.members.View()
	zone := cluster.ClientZone(c.ClientID())
	self := a.nodeID()
	for _, q := range asks {
		var mine []*partition.Partition
		consider := func(p *partition.Partition) {
			if p != nil && v.LeaderFor(p.TP, zone).NodeID == self {
				mine = append(mine, p)
			}
		}
		if q.parts == nil {
			for _, p := range q.t.Partitions {
				consider(p)
			}
		} else {
			seen := make(map[int32]bool, len(q.parts))
			for _, i := range q.parts {
				if !seen[i] {
					seen[i] = true
					consider(q.t.Partition(i))
				}
			}
		}
		if len(mine) == 0 {
			continue
		}
		sizes, err := a.store.PartitionBytes(ctx, q.t.ID)
		if err != nil {
			a.log.Warn("describe log dirs: partition sizes", "topic", q.t.Name, "err", err)
			dir.ErrorCode = kerr.KafkaStorageError.Code
			break
		}
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = q.t.Name
		for _, p := range mine {
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition, dp.Size = p.Index, sizes[p.Index]
			dt.Partitions = append(dt.Partitions, dp)
		}
		dir.Topics = append(dir.Topics, dt)
	}
	if dir.ErrorCode != 0 {
		dir.Topics = nil
	}
	resp.Dirs = append(resp.Dirs, dir)
	return wire.Respond(resp)
}
