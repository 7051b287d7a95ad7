package agent_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
)

// TestDescribeLogDirs: over a two-agent cluster, every partition is
// described once, by the agent Metadata lists as its leader, with the
// bytes the partition holds in the bucket; a partition with no data has
// size 0, and sizes grow as data is produced.
func TestDescribeLogDirs(t *testing.T) {
	t.Parallel()
	tas, _, _ := twoAgentIDs(t)
	cl := tas[0].client(t)
	createTopic(t, cl, "sizes", 4, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	md, err := adm.Metadata(ctx, "sizes")
	if err != nil {
		t.Fatal(err)
	}
	describe := func() (sizes map[int32]int64, by map[int32]int32) {
		t.Helper()
		all, err := adm.DescribeAllLogDirs(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		sizes, by = make(map[int32]int64), make(map[int32]int32)
		all.Each(func(d kadm.DescribedLogDir) {
			if d.Err != nil {
				t.Fatalf("broker %d dir %s: %v", d.Broker, d.Dir, d.Err)
			}
			for _, p := range d.Topics["sizes"] {
				if b, dup := by[p.Partition]; dup {
					t.Fatalf("partition %d described by brokers %d and %d", p.Partition, b, d.Broker)
				}
				sizes[p.Partition], by[p.Partition] = p.Size, d.Broker
			}
		})
		return sizes, by
	}
	sizes, by := describe()
	for _, p := range md.Topics["sizes"].Partitions {
		if by[p.Partition] != p.Leader || sizes[p.Partition] != 0 {
			t.Fatalf("partition %d: described by %d with %d bytes; its leader is %d and it is empty", p.Partition, by[p.Partition], sizes[p.Partition], p.Leader)
		}
	}
	for range 3 {
		if code := rawProduce(t, cl, "sizes", 2, batch("a fairly long record value, a fairly long record value")); code != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(code))
		}
	}
	after, _ := describe()
	stored, err := tas[0].store.PartitionBytes(ctx, metastore.TopicID(md.Topics["sizes"].ID))
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{0: 0, 1: 0, 2: stored[2], 3: 0}
	if stored[2] < 3*60 || !maps.Equal(after, want) {
		t.Fatalf("sizes after producing to partition 2: %v, want %v", after, want)
	}
	// Named partitions: only existing ones, each from its leader.
	named, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{"sizes": {2: {}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	named.Each(func(d kadm.DescribedLogDir) {
		for topic, ps := range d.Topics {
			for _, p := range ps {
				n++
				if topic != "sizes" || p.Partition != 2 || p.Size != stored[2] || d.Broker != by[2] {
					t.Errorf("named: broker %d described %s/%d (%d bytes)", d.Broker, topic, p.Partition, p.Size)
				}
			}
		}
	})
	if n != 1 {
		t.Fatalf("named: %d partitions described, want 1", n)
	}
	// A partition or topic that does not exist is described by no agent.
	for _, ta := range tas {
		req := kmsg.NewPtrDescribeLogDirsRequest()
		for topic, p := range map[string]int32{"sizes": 9, "no-such-topic": 0} {
			rt := kmsg.NewDescribeLogDirsRequestTopic()
			rt.Topic, rt.Partitions = topic, []int32{p}
			req.Topics = append(req.Topics, rt)
		}
		resp := kmsg.NewPtrDescribeLogDirsResponse()
		resp.SetVersion(4)
		req.SetVersion(4)
		rawRequest(t, ta.addr, req, resp)
		if resp.ErrorCode != 0 || len(resp.Dirs) != 1 || len(resp.Dirs[0].Topics) != 0 {
			t.Fatalf("unknown partitions via %s: %+v", ta.addr, resp)
		}
	}
}
