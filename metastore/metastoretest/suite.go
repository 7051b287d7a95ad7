package metastoretest

import (
	"context"
	"testing"
	"time"

	"github.com/siltstream/silt/metastore"
)

// Run runs the conformance suite, calling newStore for a fresh empty store in
// every subtest. newStore should register the store's Close with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) metastore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s metastore.Store)
	}{
		{"Topics", testTopics},
		{"TopicConfig", testTopicConfig},
		{"CreatePartitions", testCreatePartitions},
		{"DeleteTopic", testDeleteTopic},
		{"DeleteTopicForgetsItsState", testDeleteTopicForgetsItsState},
		{"CommitFlush", testCommitFlush},
		{"CommitFlushConcurrent", testCommitFlushConcurrent},
		{"CommitFlushConcurrentWide", testCommitFlushConcurrentWide},
		{"CommitFlushUnknownPartitions", testCommitFlushUnknownPartitions},
		{"RetriedCommitAfterDelete", testRetriedCommitAfterDelete},
		{"CommitFlushGuards", testCommitFlushGuards},
		{"RecordUploads", testRecordUploads},
		{"IdempotentProducers", testIdempotentProducers},
		{"IdempotentConcurrent", testIdempotentConcurrent},
		{"Index", testIndex},
		{"IndexTimestamps", testIndexTimestamps},
		{"IndexTimestampSearch", testIndexTimestampSearch},
		{"Orphans", testOrphans},
		{"OrphanCommittedAfterListing", testOrphanCommittedAfterListing},
		{"ProducerIDs", testProducerIDs},
		{"ConsumerOffsets", testConsumerOffsets},
		{"OffsetLog", testOffsetLog},
		{"OffsetLogConcurrent", testOffsetLogConcurrent},
		{"Leases", testLeases},
		{"Agents", testAgents},
		{"MembershipEpoch", testMembershipEpoch},
		{"AgentListeners", testAgentListeners},
		{"AgentNodeIDs", testAgentNodeIDs},
		{"IndexBySegment", testIndexBySegment},
		{"PartitionBytes", testPartitionBytes},
		{"Groups", testGroups},
		{"GroupCoordinatorFence", testGroupCoordinatorFence},
		{"TxnState", testTxnState},
		{"TxnStateABA", testTxnStateABA},
		{"TxnCoordinatorClaim", testTxnCoordinatorClaim},
		{"TxnCommitAppliesOffsets", testTxnCommitAppliesOffsets},
		{"TxnListsLostUpdate", testTxnListsLostUpdate},
		{"TxnBookkeeping", testTxnBookkeeping},
		{"TxnMarkerFencesZombie", testTxnMarkerFencesZombie},
		{"TxnStaleMarker", testTxnStaleMarker},
		{"TxnExpiry", testTxnExpiry},
		{"ScramCredentials", testScramCredentials},
		{"ACLs", testACLs},
		{"ClientQuotas", testClientQuotas},
		{"AdvanceLogStart", testAdvanceLogStart},
		{"ApplyRetention", testApplyRetention},
		{"PruneBelowLogStart", testPruneBelowLogStart},
		{"GCDoomsOnlyUnreferenced", testGCDoomsOnlyUnreferenced},
		{"GCOrphansAndAbandoned", testGCOrphansAndAbandoned},
		{"DeleteTopicDoomsItsSegments", testDeleteTopicDoomsItsSegments},
		{"DoomLimit", testDoomLimit},
		{"GCRacesCommits", testGCRacesCommits},
		{"ShareStates", testShareStates},
		{"ShareAcquireRace", testShareAcquireRace},
		{"GroupConfigs", testGroupConfigs},
		{"ReplaceIndex", testReplaceIndex},
		{"ReplaceIndexChanged", testReplaceIndexChanged},
		{"ReplaceIndexRaces", testReplaceIndexRaces},
		{"SchemaVersion", testSchemaVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func createTopic(t *testing.T, s metastore.Store, name string, partitions int32) metastore.Topic {
	t.Helper()
	top, err := s.CreateTopic(ctxFor(t), metastore.TopicSpec{Name: name, Partitions: partitions})
	if err != nil {
		t.Fatalf("CreateTopic(%s): %v", name, err)
	}
	return top
}

func partitionStates(t *testing.T, s metastore.Store, id metastore.TopicID) []metastore.PartitionState {
	t.Helper()
	ps, err := s.Partitions(ctxFor(t), id)
	if err != nil {
		t.Fatalf("Partitions: %v", err)
	}
	return ps
}

func highWatermarks(t *testing.T, s metastore.Store, id metastore.TopicID) []int64 {
	t.Helper()
	var hws []int64
	for _, p := range partitionStates(t, s, id) {
		hws = append(hws, p.HighWatermark)
	}
	return hws
}

// waitFor polls cond until it holds or the deadline passes. It is for
// conditions that depend on a store clock (lease and liveness expiry).
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func chunk(id metastore.TopicID, p int32, count int64) metastore.Chunk {
	return metastore.Chunk{
		TopicPartition: metastore.TopicPartition{Topic: id, Partition: p},
		Length:         100 * count,
		OffsetCount:    count,
		BatchCount:     1,
		MinTimestamp:   1000,
		MaxTimestamp:   2000,
	}
}

// commit records and commits a flush of chunks, laid out back to back.
func commit(t *testing.T, s metastore.Store, key string, chunks ...metastore.Chunk) metastore.FlushResult {
	t.Helper()
	ctx := ctxFor(t)
	if err := s.RecordUpload(ctx, key, "agent-1"); err != nil {
		t.Fatalf("RecordUpload(%s): %v", key, err)
	}
	var pos int64
	for i := range chunks {
		chunks[i].Position = pos
		pos += chunks[i].Length
	}
	res, err := s.CommitFlush(ctx, metastore.Flush{SegmentKey: key, AgentID: "agent-1", Size: pos, Chunks: chunks})
	if err != nil {
		t.Fatalf("CommitFlush(%s): %v", key, err)
	}
	if len(res.BaseOffsets) != len(chunks) {
		t.Fatalf("CommitFlush(%s) returned %d base offsets for %d chunks", key, len(res.BaseOffsets), len(chunks))
	}
	return res
}

func index(t *testing.T, s metastore.Store, tp metastore.TopicPartition, from int64) []metastore.IndexEntry {
	t.Helper()
	es, err := s.Index(ctxFor(t), tp, from, 1<<62, 1<<30)
	if err != nil {
		t.Fatalf("Index: %v", err)
	}
	return es
}

func testSchemaVersion(t *testing.T, s metastore.Store) {
	v, err := s.SchemaVersion(ctxFor(t))
	if err != nil || v <= 0 {
		t.Fatalf("SchemaVersion = %d, %v; want > 0", v, err)
	}
}
