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
	return r
}
