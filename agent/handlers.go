package agent

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

// registry lists every API the agent answers, with the versions it
// supports. The wire server builds ApiVersions from this same table, so
// what is advertised is exactly what is handled. Each range is at least
// what Apache Kafka 3.9 accepts (its message JSONs' validVersions), so no
// client that works with Kafka 3.9 has its connection closed for a
// version: what Silt cannot serve at an old version (message formats v0
// and v1) is answered with an error code per partition instead.
func (a *Agent) registry() *wire.Registry {
	r := wire.NewRegistry()
	r.Register(int16(kmsg.Produce), 0, 11, a.handleProduce)
	r.Register(int16(kmsg.Fetch), 0, 17, a.handleFetch)
	r.Register(int16(kmsg.ListOffsets), 0, 9, a.handleListOffsets)
	r.Register(int16(kmsg.DeleteRecords), 0, 2, a.handleDeleteRecords)
	r.Register(int16(kmsg.Metadata), 0, 12, a.handleMetadata)
	r.Register(int16(kmsg.CreateTopics), 0, 7, a.handleCreateTopics)
	r.Register(int16(kmsg.DeleteTopics), 0, 6, a.handleDeleteTopics)
	r.Register(int16(kmsg.CreatePartitions), 0, 3, a.handleCreatePartitions)
	r.Register(int16(kmsg.DescribeConfigs), 0, 4, a.handleDescribeConfigs)
	r.Register(int16(kmsg.AlterConfigs), 0, 2, a.handleAlterConfigs)
	r.Register(int16(kmsg.IncrementalAlterConfigs), 0, 1, a.handleIncrementalAlterConfigs)
	r.Register(int16(kmsg.DescribeCluster), 0, 1, a.handleDescribeCluster)
	r.Register(int16(kmsg.InitProducerID), 0, 5, a.handleInitProducerID)
	r.Register(int16(kmsg.OffsetForLeaderEpoch), 0, 4, a.handleOffsetForLeaderEpoch)
	r.Register(int16(kmsg.FindCoordinator), 0, 6, a.handleFindCoordinator)
	r.Register(int16(kmsg.JoinGroup), 0, 9, a.handleJoinGroup)
	r.Register(int16(kmsg.SyncGroup), 0, 5, a.handleSyncGroup)
	r.Register(int16(kmsg.Heartbeat), 0, 4, a.handleHeartbeat)
	r.Register(int16(kmsg.LeaveGroup), 0, 5, a.handleLeaveGroup)
	r.Register(int16(kmsg.OffsetCommit), 0, 9, a.handleOffsetCommit)
	r.Register(int16(kmsg.OffsetFetch), 0, 9, a.handleOffsetFetch)
	r.Register(int16(kmsg.OffsetDelete), 0, 0, a.handleOffsetDelete)
	r.Register(int16(kmsg.DescribeGroups), 0, 5, a.handleDescribeGroups)
	r.Register(int16(kmsg.ListGroups), 0, 5, a.handleListGroups)
	r.Register(int16(kmsg.DeleteGroups), 0, 2, a.handleDeleteGroups)
	r.Register(int16(kmsg.AddPartitionsToTxn), 0, 5, a.handleAddPartitionsToTxn)
	r.Register(int16(kmsg.AddOffsetsToTxn), 0, 4, a.handleAddOffsetsToTxn)
	r.Register(int16(kmsg.TxnOffsetCommit), 0, 4, a.handleTxnOffsetCommit)
	r.Register(int16(kmsg.EndTxn), 0, 4, a.handleEndTxn)
	r.Register(int16(kmsg.DescribeTransactions), 0, 0, a.handleDescribeTransactions)
	r.Register(int16(kmsg.ListTransactions), 0, 1, a.handleListTransactions)
	r.Register(int16(kmsg.DescribeProducers), 0, 0, a.handleDescribeProducers)
	r.Register(int16(kmsg.DescribeUserSCRAMCredentials), 0, 0, a.handleDescribeUserScramCredentials)
	r.Register(int16(kmsg.AlterUserSCRAMCredentials), 0, 0, a.handleAlterUserScramCredentials)
	r.Register(int16(kmsg.DescribeACLs), 0, 3, a.handleDescribeACLs)
	r.Register(int16(kmsg.CreateACLs), 0, 3, a.handleCreateACLs)
	r.Register(int16(kmsg.DeleteACLs), 0, 3, a.handleDeleteACLs)
	r.Register(int16(kmsg.ElectLeaders), 0, 2, a.handleElectLeaders)
	r.Register(int16(kmsg.AlterPartitionAssignments), 0, 0, a.handleAlterPartitionReassignments)
	r.Register(int16(kmsg.ListPartitionReassignments), 0, 0, a.handleListPartitionReassignments)
	r.Register(int16(kmsg.DescribeTopicPartitions), 0, 0, a.handleDescribeTopicPartitions)
	r.Register(int16(kmsg.UpdateFeatures), 0, 1, a.handleUpdateFeatures)
	r.Register(int16(kmsg.GetTelemetrySubscriptions), 0, 0, a.handleGetTelemetrySubscriptions)
	r.Register(int16(kmsg.DescribeLogDirs), 0, 4, a.handleDescribeLogDirs)
	r.Register(int16(kmsg.PushTelemetry), 0, 0, a.handlePushTelemetry)
	if a.cfg.ConsumerGroups() {
		r.Register(int16(kmsg.ConsumerGroupHeartbeat), 0, 1, a.handleConsumerGroupHeartbeat)
		r.Register(int16(kmsg.ConsumerGroupDescribe), 0, 1, a.handleConsumerGroupDescribe)
	}
	r.SetFeatures(a.features())
	return r
}
