package agent

// Manual replica assignments (CreateTopics, CreatePartitions).
//
// Silt keeps no replica sets: the bucket is the replica, and leadership is
// rendezvous hashing over the live agents. An assignment is still checked
// as Kafka's controller checks it (ReplicationControlManager.
// validateManualPartitionAssignment), so a request Kafka refuses is refused
// here too, and one Kafka takes is taken: it names the partitions to
// create, while where they are led stays Silt's choice. Kafka also requires
// new partitions to have as many replicas as the topic's existing ones;
// Silt has no replica count to compare with, so it only requires the
// partitions of one request to agree with each other.

import (
	"fmt"
	"slices"

	"github.com/siltstream/silt/cluster"
)

// checkAssignment checks one partition's replica list against the live
// agents' node ids. replicas is the replica count of the request's earlier
// partitions (0 for the first).
func checkAssignment(v *cluster.View, brokerIDs []int32, replicas int) error {
	if len(brokerIDs) == 0 {
		return fmt.Errorf("the manual partition assignment includes an empty replica list")
	}
	sorted := slices.Clone(brokerIDs)
	slices.Sort(sorted)
	for i, id := range sorted {
		if !slices.ContainsFunc(v.Brokers, func(b cluster.Broker) bool { return b.NodeID == id }) {
			return fmt.Errorf("the manual partition assignment includes broker %d, but no such broker is registered", id)
		}
		if i > 0 && sorted[i-1] == id {
			return fmt.Errorf("the manual partition assignment includes the broker %d more than once", id)
		}
	}
	if replicas > 0 && len(brokerIDs) != replicas {
		return fmt.Errorf("the manual partition assignment includes a partition with %d replica(s), but this is not consistent with previous partitions, which have %d replica(s)", len(brokerIDs), replicas)
	}
	return nil
}
