package agent_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestConsumerGroupLag: lag is high watermark minus committed offset,
// summed over the group's partitions, and exported per group.
func TestConsumerGroupLag(t *testing.T) {
	forEachBackend(t, testConsumerGroupLag)
}

func testConsumerGroupLag(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t)
	createTopic(t, cl, "lagged", 2, nil)
	for i := 0; i < 10; i++ {
		if code := rawProduce(t, cl, "lagged", int32(i%2), batch("x")); code != 0 {
			t.Fatalf("produce: %d", code)
		}
	}
	ctx := context.Background()
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "lagged", Partition: 0, At: 2, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: "lagged", Partition: 1, At: 5, LeaderEpoch: -1})
	if r, err := kadm.NewClient(cl).CommitOffsets(ctx, "lagging", offs); err != nil || r.Error() != nil {
		t.Fatalf("commit offsets: %v %v", err, r.Error())
	}
	lag, err := ta.ComputeConsumerLag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lag["lagging"] != 3 { // (5-2) + (5-5)
		t.Fatalf("lag = %v, want lagging: 3", lag)
	}
	reg := prometheus.NewRegistry()
	if err := ta.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "silt_consumer_group_lag" {
			m := mf.GetMetric()[0]
			if m.GetLabel()[0].GetValue() != "lagging" || m.GetGauge().GetValue() != 3 {
				t.Fatalf("silt_consumer_group_lag = %v", m)
			}
			return
		}
	}
	t.Fatal("silt_consumer_group_lag not exported")
}
