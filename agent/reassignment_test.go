package agent_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestElectLeaders: every existing partition is led by its preferred (and
// only listed) replica, so an election is never needed; unknown ones say
// so; asked for every partition, Kafka lists none whose election was not
// needed. v0 (no top-level error code) answers the same per partition.
func TestElectLeaders(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, nil)
	cl := ta.client(t)
	createTopic(t, cl, "el", 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	for _, how := range []kadm.ElectLeadersHow{kadm.ElectPreferredReplica, kadm.ElectLiveReplica} {
		rs, err := adm.ElectLeaders(ctx, how, kadm.TopicsSet{"el": {0: {}, 1: {}, 7: {}}, "no-such-topic": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []struct {
			topic string
			p     int32
			err   error
		}{{"el", 0, kerr.ElectionNotNeeded}, {"el", 1, kerr.ElectionNotNeeded}, {"el", 7, kerr.UnknownTopicOrPartition}, {"no-such-topic", 0, kerr.UnknownTopicOrPartition}} {
			if r, ok := rs[want.topic][want.p]; !ok || !errors.Is(r.Err, want.err) {
				t.Errorf("election %v of %s/%d: %+v, want %v", how, want.topic, want.p, r, want.err)
			}
		}
		all, err := adm.ElectLeaders(ctx, how, nil)
		if err != nil || len(all) != 0 {
			t.Fatalf("election %v of every partition: %v %v, want no results", how, all, err)
		}
	}
	req := kmsg.NewPtrElectLeadersRequest()
	req.SetVersion(0)
	rt := kmsg.NewElectLeadersRequestTopic()
	rt.Topic, rt.Partitions = "el", []int32{1}
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrElectLeadersResponse()
	resp.SetVersion(0)
	rawRequest(t, ta.addr, req, resp)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != kerr.ElectionNotNeeded.Code {
		t.Fatalf("ElectLeaders v0: %+v", resp)
	}
}

// TestPartitionReassignments: none is ever in progress; reassigning a
// partition to its current replicas is nothing to do (Kafka answers it
// without error); cancelling answers NO_REASSIGNMENT_IN_PROGRESS; an
// unknown broker, an unknown partition, or a move Silt cannot make are
// refused with Kafka's codes.
func TestPartitionReassignments(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, nil)
	cl := ta.client(t)
	createTopic(t, cl, "ra", 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	md, err := adm.Metadata(ctx, "ra")
	if err != nil {
		t.Fatal(err)
	}
	self := md.Brokers[0].NodeID
	current := md.Topics["ra"].Partitions[0].Replicas

	ls, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"ra": {0: {}, 1: {}}})
	if err != nil || len(ls["ra"]) != 0 {
		t.Fatalf("list reassignments: %v %v, want none", ls, err)
	}

	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("ra", 0, current)
	req.Assign("ra", 1, nil) // cancel
	req.Assign("ra", 9, []int32{self})
	req.Assign("no-such-topic", 0, []int32{self})
	rs, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		topic string
		p     int32
		err   error
	}{
		{"ra", 0, nil},
		{"ra", 1, kerr.NoReassignmentInProgress},
		{"ra", 9, kerr.UnknownTopicOrPartition},
		{"no-such-topic", 0, kerr.UnknownTopicOrPartition},
	} {
		if r := rs[want.topic][want.p]; !errors.Is(r.Err, want.err) || (want.err == nil && r.Err != nil) {
			t.Errorf("reassign %s/%d: %v, want %v", want.topic, want.p, r.Err, want.err)
		}
	}
	for _, target := range [][]int32{{self + 1}, {self, self}, {}, {self, self + 1}} {
		var req kadm.AlterPartitionAssignmentsReq
		req.Assign("ra", 0, target)
		rs, err := adm.AlterPartitionAssignments(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if r := rs["ra"][0]; !errors.Is(r.Err, kerr.InvalidReplicaAssignment) || r.ErrMessage == "" {
			t.Errorf("reassign to %v: %v %q, want INVALID_REPLICA_ASSIGNMENT with a message", target, r.Err, r.ErrMessage)
		}
	}
}

// TestReassignmentToAnotherAgentRefused: moving a partition to a live
// agent other than its leader is a move Silt does not make (it places
// partitions itself): INVALID_REPLICA_ASSIGNMENT, saying so.
func TestReassignmentToAnotherAgentRefused(t *testing.T) {
	t.Parallel()
	tas, a, b := twoAgentIDs(t)
	cl := tas[0].client(t)
	createTopic(t, cl, "move", 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	md, err := adm.Metadata(ctx, "move")
	if err != nil {
		t.Fatal(err)
	}
	other := a
	if md.Topics["move"].Partitions[0].Leader == a {
		other = b
	}
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("move", 0, []int32{other})
	rs, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := rs["move"][0]; !errors.Is(r.Err, kerr.InvalidReplicaAssignment) || !strings.Contains(r.ErrMessage, "places partitions itself") {
		t.Fatalf("reassign to agent %d: %v %q", other, r.Err, r.ErrMessage)
	}
}
