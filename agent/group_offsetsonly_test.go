package agent_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupWithOnlyOffsetsIsEmpty: a group that only has offsets,
// committed from outside group management (generation -1, as
// librdkafka's Consumer.commit without subscribing, or an admin client),
// is described as Kafka describes it, Empty, as ListGroups lists it, not
// Dead, which is for a group that does not exist. confluent-kafka-python's
// list_groups (ListGroups, then DescribeGroups) reported it Dead.
func TestGroupWithOnlyOffsetsIsEmpty(t *testing.T) {
	forEachBackend(t, testGroupWithOnlyOffsetsIsEmpty)
}

func testGroupWithOnlyOffsetsIsEmpty(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t)
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	createTopic(t, cl, "oo", 2, nil)
	resp, err := adm.CommitOffsets(ctx, "offsets-only", kadm.OffsetsFromRecords(kgo.Record{Topic: "oo", Partition: 1, Offset: 4}))
	if err != nil || resp.Error() != nil {
		t.Fatalf("commit offsets: %v %v", err, resp.Error())
	}

	ls, err := adm.ListGroups(ctx)
	if err != nil || ls["offsets-only"].State != "Empty" {
		t.Fatalf("ListGroups = %+v, %v; want offsets-only Empty", ls, err)
	}
	ds, err := adm.DescribeGroups(ctx, "offsets-only", "nope")
	if err != nil {
		t.Fatal(err)
	}
	if d := ds["offsets-only"]; d.Err != nil || d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("describe offsets-only = %+v, want Empty without members", d)
	}
	if d := ds["nope"]; d.State != "Dead" {
		t.Fatalf("describe of an unknown group: state %q", d.State)
	}
}
