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
	// Every handler's time counts against request_percentage quotas.
	reg := func(key kmsg.Key, minVersion, maxVersion int16, h wire.Handler) {
		r.Register(int16(key), minVersion, maxVersion, a.withRequestQuota(h))
	}
	reg(kmsg.Produce, 0, 11, a.handleProduce)
	reg(kmsg.Fetch, 0, 17, a.handleFetch)
	reg(kmsg.ListOffsets, 0, 9, a.handleListOffsets)
	reg(kmsg.DeleteRecords, 0, 2, a.handleDeleteRecords)
	reg(kmsg.Metadata, 0, 12, a.handleMetadata)
	reg(kmsg.CreateTopics, 0, 7, a.handleCreateTopics)
	reg(kmsg.DeleteTopics, 0, 6, a.handleDeleteTopics)
	reg(kmsg.CreatePartitions, 0, 3, a.handleCreatePartitions)
	reg(kmsg.DescribeConfigs, 0, 4, a.handleDescribeConfigs)
	reg(kmsg.AlterConfigs, 0, 2, a.handleAlterConfigs)
	reg(kmsg.IncrementalAlterConfigs, 0, 1, a.handleIncrementalAlterConfigs)
	reg(kmsg.DescribeCluster, 0, 1, a.handleDescribeCluster)
	reg(kmsg.InitProducerID, 0, 5, a.handleInitProducerID)
	reg(kmsg.OffsetForLeaderEpoch, 0, 4, a.handleOffsetForLeaderEpoch)
	reg(kmsg.FindCoordinator, 0, 6, a.handleFindCoordinator)
	reg(kmsg.JoinGroup, 0, 9, a.handleJoinGroup)
	reg(kmsg.SyncGroup, 0, 5, a.handleSyncGroup)
	reg(kmsg.Heartbeat, 0, 4, a.handleHeartbeat)
	reg(kmsg.LeaveGroup, 0, 5, a.handleLeaveGroup)
	reg(kmsg.OffsetCommit, 0, 9, a.handleOffsetCommit)
	reg(kmsg.OffsetFetch, 0, 9, a.handleOffsetFetch)
	reg(kmsg.OffsetDelete, 0, 0, a.handleOffsetDelete)
	reg(kmsg.DescribeGroups, 0, 5, a.handleDescribeGroups)
	reg(kmsg.ListGroups, 0, 5, a.handleListGroups)
	reg(kmsg.DeleteGroups, 0, 2, a.handleDeleteGroups)
	reg(kmsg.AddPartitionsToTxn, 0, 5, a.handleAddPartitionsToTxn)
	reg(kmsg.AddOffsetsToTxn, 0, 4, a.handleAddOffsetsToTxn)
	reg(kmsg.TxnOffsetCommit, 0, 4, a.handleTxnOffsetCommit)
	reg(kmsg.EndTxn, 0, 4, a.handleEndTxn)
	reg(kmsg.DescribeTransactions, 0, 0, a.handleDescribeTransactions)
	reg(kmsg.ListTransactions, 0, 1, a.handleListTransactions)
	reg(kmsg.DescribeProducers, 0, 0, a.handleDescribeProducers)
	reg(kmsg.DescribeUserSCRAMCredentials, 0, 0, a.handleDescribeUserScramCredentials)
	reg(kmsg.AlterUserSCRAMCredentials, 0, 0, a.handleAlterUserScramCredentials)
	reg(kmsg.DescribeACLs, 0, 3, a.handleDescribeACLs)
	reg(kmsg.CreateACLs, 0, 3, a.handleCreateACLs)
	reg(kmsg.DeleteACLs, 0, 3, a.handleDeleteACLs)
	reg(kmsg.ElectLeaders, 0, 2, a.handleElectLeaders)
	reg(kmsg.AlterPartitionAssignments, 0, 0, a.handleAlterPartitionReassignments)
	reg(kmsg.ListPartitionReassignments, 0, 0, a.handleListPartitionReassignments)
	reg(kmsg.DescribeTopicPartitions, 0, 0, a.handleDescribeTopicPartitions)
	reg(kmsg.UpdateFeatures, 0, 1, a.handleUpdateFeatures)
	reg(kmsg.GetTelemetrySubscriptions, 0, 0, a.handleGetTelemetrySubscriptions)
	reg(kmsg.DescribeLogDirs, 0, 4, a.handleDescribeLogDirs)
	reg(kmsg.PushTelemetry, 0, 0, a.handlePushTelemetry)
	reg(kmsg.DescribeClientQuotas, 0, 1, a.handleDescribeClientQuotas)
	reg(kmsg.AlterClientQuotas, 0, 1, a.handleAlterClientQuotas)
	if a.cfg.ConsumerGroups() {
		reg(kmsg.ConsumerGroupHeartbeat, 0, 1, a.handleConsumerGroupHeartbeat)
		reg(kmsg.ConsumerGroupDescribe, 0, 1, a.handleConsumerGroupDescribe)
	}
	// Share groups: advertised only while on; otherwise still answered,
	// with UNSUPPORTED_VERSION, so a client that asks anyway is not cut off.
	share := func(key kmsg.Key, minVersion, maxVersion int16, h wire.Handler) {
		if a.cfg.ShareGroups() {
			reg(key, minVersion, maxVersion, h)
			return
		}
		r.RegisterHidden(int16(key), minVersion, maxVersion, shareGroupsOff)
	}
	share(kmsg.ShareGroupHeartbeat, 1, 1, a.handleShareGroupHeartbeat)
	share(kmsg.ShareGroupDescribe, 1, 1, a.handleShareGroupDescribe)
	share(kmsg.ShareFetch, 1, 2, a.handleShareFetch)
	share(kmsg.ShareAcknowledge, 1, 2, a.handleShareAcknowledge)
	share(kmsg.DescribeShareGroupOffsets, 0, 1, a.handleDescribeShareGroupOffsets)
	share(kmsg.AlterShareGroupOffsets, 0, 0, a.handleAlterShareGroupOffsets)
	share(kmsg.DeleteShareGroupOffsets, 0, 0, a.handleDeleteShareGroupOffsets)
	r.SetFeatures(a.features())
	return r
}
