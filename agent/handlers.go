package agent

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

// registry lists every API the agent answers, with the versions it
// supports. The wire server builds ApiVersions from this same table, so
// what is advertised is exactly what is handled.
func (a *Agent) registry() *wire.Registry {
	r := wire.NewRegistry()
	r.Register(int16(kmsg.Produce), 3, 11, a.handleProduce)
	r.Register(int16(kmsg.Fetch), 4, 16, a.handleFetch)
	r.Register(int16(kmsg.ListOffsets), 1, 8, a.handleListOffsets)
	r.Register(int16(kmsg.DeleteRecords), 0, 2, a.handleDeleteRecords)
	r.Register(int16(kmsg.Metadata), 1, 12, a.handleMetadata)
	r.Register(int16(kmsg.CreateTopics), 2, 7, a.handleCreateTopics)
	r.Register(int16(kmsg.DeleteTopics), 1, 6, a.handleDeleteTopics)
	r.Register(int16(kmsg.CreatePartitions), 0, 3, a.handleCreatePartitions)
	r.Register(int16(kmsg.DescribeConfigs), 1, 4, a.handleDescribeConfigs)
	r.Register(int16(kmsg.AlterConfigs), 0, 2, a.handleAlterConfigs)
	r.Register(int16(kmsg.IncrementalAlterConfigs), 0, 1, a.handleIncrementalAlterConfigs)
	r.Register(int16(kmsg.DescribeCluster), 0, 1, a.handleDescribeCluster)
	r.Register(int16(kmsg.InitProducerID), 0, 4, a.handleInitProducerID)
	r.Register(int16(kmsg.OffsetForLeaderEpoch), 2, 4, a.handleOffsetForLeaderEpoch)
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
	r.Register(int16(kmsg.AddOffsetsToTxn), 0, 3, a.handleAddOffsetsToTxn)
	r.Register(int16(kmsg.TxnOffsetCommit), 0, 3, a.handleTxnOffsetCommit)
	r.Register(int16(kmsg.EndTxn), 0, 3, a.handleEndTxn)
	r.Register(int16(kmsg.DescribeTransactions), 0, 0, a.handleDescribeTransactions)
	r.Register(int16(kmsg.ListTransactions), 0, 1, a.handleListTransactions)
	r.Register(int16(kmsg.DescribeProducers), 0, 0, a.handleDescribeProducers)
	r.Register(int16(kmsg.DescribeUserSCRAMCredentials), 0, 0, a.handleDescribeUserScramCredentials)
	r.Register(int16(kmsg.AlterUserSCRAMCredentials), 0, 0, a.handleAlterUserScramCredentials)
	r.Register(int16(kmsg.DescribeACLs), 0, 3, a.handleDescribeACLs)
	r.Register(int16(kmsg.CreateACLs), 0, 3, a.handleCreateACLs)
	r.Register(int16(kmsg.DeleteACLs), 0, 3, a.handleDeleteACLs)
	return r
}
