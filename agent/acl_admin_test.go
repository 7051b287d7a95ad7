package agent_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestACLAdminAPIs: the admin APIs answered as a broker with nothing to
// move need what Kafka needs — ALTER on the cluster for ElectLeaders,
// AlterPartitionReassignments and UpdateFeatures, DESCRIBE on the cluster
// for ListPartitionReassignments and DescribeLogDirs, DESCRIBE on a topic
// for DescribeTopicPartitions — and answer with Kafka's codes without it.
func TestACLAdminAPIs(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, withACLs(nil))
	admin, alice := ta.as(t, "admin"), ta.as(t, "alice")
	createTopic(t, admin, "adm", 1, nil)

	// check sends each API as cl and returns its codes; listAll says
	// whether DescribeTopicPartitions of every topic should list "adm".
	check := func(who string, cl requester, listAll bool) (codes map[string]int16) {
		codes = make(map[string]int16)

		el := kmsg.NewPtrElectLeadersRequest()
		et := kmsg.NewElectLeadersRequestTopic()
		et.Topic, et.Partitions = "adm", []int32{0}
		el.Topics = append(el.Topics, et)
		elr := request(t, cl, el).(*kmsg.ElectLeadersResponse)
		codes["ElectLeaders"] = elr.ErrorCode

		ap := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		at := kmsg.NewAlterPartitionAssignmentsRequestTopic()
		at.Topic = "adm"
		at.Partitions = append(at.Partitions, kmsg.NewAlterPartitionAssignmentsRequestTopicPartition())
		ap.Topics = append(ap.Topics, at)
		codes["AlterPartitionReassignments"] = request(t, cl, ap).(*kmsg.AlterPartitionAssignmentsResponse).ErrorCode

		lp := kmsg.NewPtrListPartitionReassignmentsRequest()
		codes["ListPartitionReassignments"] = request(t, cl, lp).(*kmsg.ListPartitionReassignmentsResponse).ErrorCode

		ld := kmsg.NewPtrDescribeLogDirsRequest()
		codes["DescribeLogDirs"] = request(t, cl, ld).(*kmsg.DescribeLogDirsResponse).ErrorCode

		uf := kmsg.NewPtrUpdateFeaturesRequest()
		u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		u.Feature, u.UpgradeType = "group.version", 1
		uf.FeatureUpdates = append(uf.FeatureUpdates, u)
		codes["UpdateFeatures"] = request(t, cl, uf).(*kmsg.UpdateFeaturesResponse).ErrorCode

		dt := kmsg.NewPtrDescribeTopicPartitionsRequest()
		dt.ResponsePartitionLimit = 10
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = "adm"
		dt.Topics = append(dt.Topics, rt)
		dtr := request(t, cl, dt).(*kmsg.DescribeTopicPartitionsResponse)
		codes["DescribeTopicPartitions"] = dtr.Topics[0].ErrorCode
		if dtr.Topics[0].ErrorCode != 0 && (len(dtr.Topics[0].Partitions) != 0 || dtr.Topics[0].TopicID != [16]byte{}) {
			t.Errorf("%s: DescribeTopicPartitions denied but tells %+v", who, dtr.Topics[0])
		}
		all := kmsg.NewPtrDescribeTopicPartitionsRequest()
		all.ResponsePartitionLimit = 10
		if n := len(request(t, cl, all).(*kmsg.DescribeTopicPartitionsResponse).Topics); listAll != (n == 1) {
			t.Errorf("%s: DescribeTopicPartitions of every topic lists %d topics", who, n)
		}
		return codes
	}
	allowed := map[string]int16{"ElectLeaders": 0, "AlterPartitionReassignments": 0, "ListPartitionReassignments": 0,
		"DescribeLogDirs": 0, "UpdateFeatures": 0, "DescribeTopicPartitions": 0}
	clusterDenied := kerr.ClusterAuthorizationFailed.Code
	denied := map[string]int16{"ElectLeaders": clusterDenied, "AlterPartitionReassignments": clusterDenied,
		"ListPartitionReassignments": clusterDenied, "DescribeLogDirs": clusterDenied,
		"UpdateFeatures": clusterDenied, "DescribeTopicPartitions": kerr.TopicAuthorizationFailed.Code}
	expect := func(who string, cl requester, listAll bool, want map[string]int16) {
		t.Helper()
		got := check(who, cl, listAll)
		for api, code := range want {
			if got[api] != code {
				t.Errorf("%s %s: %v, want %v", who, api, kerr.ErrorForCode(got[api]), kerr.ErrorForCode(code))
			}
		}
	}
	expect("admin", admin, true, allowed)
	expect("alice", alice, false, denied)
	// With the grants Kafka asks for, alice gets what admin gets.
	createACLs(t, admin,
		allow(rtCluster, "kafka-cluster", "alice", kmsg.ACLOperationAlter),
		allow(rtCluster, "kafka-cluster", "alice", kmsg.ACLOperationDescribe),
		allow(rtTopic, "adm", "alice", kmsg.ACLOperationDescribe))
	expect("alice with grants", alice, true, allowed)
}
