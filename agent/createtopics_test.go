package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/internal/poll"
)

// twoAgentIDs starts a cluster of two agents and returns it with both node
// ids, once the first agent lists both.
func twoAgentIDs(t *testing.T) ([]*testAgent, int32, int32) {
	t.Helper()
	tas := startCluster(t, "", "")
	poll.Until(t, "both agents listed", func() bool { return len(brokerIDs(t, tas[0])) == 2 })
	return tas, nodeOf(t, tas[0]), nodeOf(t, tas[1])
}

// TestCreateTopicsRefusesWhatKafkaRefuses: each topic of one CreateTopics
// request gets the code Kafka's controller gives it, and only the valid
// ones are created; a manual assignment naming live agents is taken.
func TestCreateTopicsRefusesWhatKafkaRefuses(t *testing.T) {
	t.Parallel()
	tas, a, b := twoAgentIDs(t)
	cl := tas[0].client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	createTopic(t, cl, "foo_bar", 1, nil)

	type topic struct {
		name       string
		partitions int32
		rf         int16
		assign     [][]int32
		configs    map[string]*string
		code       int16
	}
	asg := func(rs ...[]int32) [][]int32 { return rs }
	topics := []topic{
		{name: "dup", partitions: 1, rf: 1, code: kerr.InvalidRequest.Code},
		{name: "bad name!", partitions: 1, rf: 1, code: kerr.InvalidTopicException.Code},
		{name: "foo.bar", partitions: 1, rf: 1, code: kerr.InvalidTopicException.Code},
		{name: "rf-zero", partitions: 1, rf: 0, code: kerr.InvalidReplicationFactor.Code},
		{name: "rf-minus-two", partitions: 1, rf: -2, code: kerr.InvalidReplicationFactor.Code},
		{name: "partitions-zero", partitions: 0, rf: 1, code: kerr.InvalidPartitions.Code},
		{name: "partitions-minus-two", partitions: -2, rf: 1, code: kerr.InvalidPartitions.Code},
		{name: "asg-with-rf", partitions: -1, rf: 1, assign: asg([]int32{a}), code: kerr.InvalidRequest.Code},
		{name: "asg-with-count", partitions: 1, rf: -1, assign: asg([]int32{a}), code: kerr.InvalidRequest.Code},
		{name: "asg-unknown-broker", partitions: -1, rf: -1, assign: asg([]int32{a + b + 1}), code: kerr.InvalidReplicaAssignment.Code},
		{name: "asg-broker-twice", partitions: -1, rf: -1, assign: asg([]int32{a, a}), code: kerr.InvalidReplicaAssignment.Code},
		{name: "asg-empty", partitions: -1, rf: -1, assign: asg([]int32{}), code: kerr.InvalidReplicaAssignment.Code},
		{name: "asg-inconsistent", partitions: -1, rf: -1, assign: asg([]int32{a}, []int32{a, b}), code: kerr.InvalidReplicaAssignment.Code},
		{name: "config-unknown", partitions: 1, rf: 1, configs: map[string]*string{"no.such.config": kmsg.StringPtr("1")}, code: kerr.InvalidConfig.Code},
		{name: "config-invalid", partitions: 1, rf: 1, configs: map[string]*string{"retention.ms": kmsg.StringPtr("soon")}, code: kerr.InvalidConfig.Code},
		{name: "config-null", partitions: 1, rf: 1, configs: map[string]*string{"retention.ms": nil}, code: kerr.InvalidConfig.Code},
		{name: "dup", partitions: 2, rf: 1, code: kerr.InvalidRequest.Code},
		{name: "asg-ok", partitions: -1, rf: -1, assign: asg([]int32{a}, []int32{b}, []int32{b, a}[:1]), code: 0},
		{name: "plain", partitions: 2, rf: -1, code: 0},
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	for _, tc := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = tc.name, tc.partitions, tc.rf
		for p, rs := range tc.assign {
			ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			ra.Partition, ra.Replicas = int32(p), rs
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
		}
		for k, v := range tc.configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, v
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string][]int16)
	for _, rt := range resp.Topics {
		got[rt.Topic] = append(got[rt.Topic], rt.ErrorCode)
	}
	for _, tc := range topics {
		if codes := got[tc.name]; len(codes) != 1 || codes[0] != tc.code {
			t.Errorf("%s: %v, want one %v", tc.name, codes, kerr.ErrorForCode(tc.code))
		}
	}

	// Only the valid topics exist, on every agent, with the assignment's
	// partition count.
	for _, ta := range tas {
		td, err := kadm.NewClient(ta.client(t)).ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"foo_bar": 1, "asg-ok": 3, "plain": 2}
		if len(td) != len(want) {
			t.Errorf("topics %v, want %v", td.Names(), want)
		}
		for name, n := range want {
			if len(td[name].Partitions) != n {
				t.Errorf("%s: %d partitions, want %d", name, len(td[name].Partitions), n)
			}
		}
	}
}

// TestCreatePartitionsWithAssignment: new partitions may be given an
// assignment naming live agents, one per new partition (Kafka accepts it);
// too few assignments or an unknown broker are INVALID_REPLICA_ASSIGNMENT.
func TestCreatePartitionsWithAssignment(t *testing.T) {
	t.Parallel()
	tas, a, b := twoAgentIDs(t)
	cl := tas[1].client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	createTopic(t, cl, "grow", 1, nil)
	for _, tc := range []struct {
		count  int32
		assign [][]int32
		code   int16
	}{
		{3, [][]int32{{a}}, kerr.InvalidReplicaAssignment.Code},
		{3, [][]int32{{a}, {a + b + 1}}, kerr.InvalidReplicaAssignment.Code},
		{3, [][]int32{{a}, {b, b}}, kerr.InvalidReplicaAssignment.Code},
		{3, [][]int32{}, kerr.InvalidReplicaAssignment.Code},
		{3, [][]int32{{b}, {a}}, 0},
		{5, nil, 0},
	} {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.TimeoutMillis = 10000
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "grow", tc.count
		if tc.assign != nil {
			rt.Assignment = []kmsg.CreatePartitionsRequestTopicAssignment{}
		}
		for _, rs := range tc.assign {
			as := kmsg.NewCreatePartitionsRequestTopicAssignment()
			as.Replicas = rs
			rt.Assignment = append(rt.Assignment, as)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].ErrorCode; code != tc.code {
			t.Fatalf("count %d, assignment %v: %v, want %v", tc.count, tc.assign, kerr.ErrorForCode(code), kerr.ErrorForCode(tc.code))
		}
	}
	for _, ta := range tas {
		poll.Until(t, "5 partitions listed", func() bool {
			td, err := kadm.NewClient(ta.client(t)).ListTopics(ctx, "grow")
			return err == nil && len(td["grow"].Partitions) == 5
		})
	}
}
