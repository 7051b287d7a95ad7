package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/metastore"
)

// TestDanglingTransactionalWriteIsAborted: a transactional batch that
// commits after its transaction ended (its request was slow, the client
// gave up) would hold the last stable offset forever; the coordinator finds
// it and aborts it, and the LSO reaches the high watermark.
func TestDanglingTransactionalWriteIsAborted(t *testing.T) {
	forEachBackend(t, testDanglingTransactionalWriteIsAborted)
}

func testDanglingTransactionalWriteIsAborted(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	admin := ta.client(t)
	createTopic(t, admin, "dangle", 1, nil)
	prod := ta.client(t, kgo.TransactionalID("td"), kgo.DefaultProduceTopic("dangle"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("committed")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := prod.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The late write, committed straight through the store as an agent
	// whose flush was delayed would.
	topic, err := ta.store.Topic(ctx, "dangle")
	if err != nil {
		t.Fatal(err)
	}
	tp := metastore.TopicPartition{Topic: topic.ID, Partition: 0}
	if err := ta.store.RecordUpload(ctx, "late-segment", "slow-agent"); err != nil {
		t.Fatal(err)
	}
	if _, err := ta.store.CommitFlush(ctx, metastore.Flush{SegmentKey: "late-segment", AgentID: "slow-agent", Size: 100,
		Chunks: []metastore.Chunk{{TopicPartition: tp, Length: 100, OffsetCount: 1, BatchCount: 1, Batches: []metastore.ProducerBatch{{
			Length: 100, OffsetCount: 1, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 1, IsTransactional: true,
		}}}}}); err != nil {
		t.Fatal(err)
	}
	state := func() metastore.PartitionState {
		states, err := ta.store.Partitions(ctx, topic.ID)
		if err != nil {
			t.Fatal(err)
		}
		return states[0]
	}
	if st := state(); st.LastStableOffset >= st.HighWatermark {
		t.Fatalf("the late write did not open a transaction: %+v", st)
	}
	deadline := time.Now().Add(30 * time.Second)
	for st := state(); st.LastStableOffset < st.HighWatermark; st = state() {
		if time.Now().After(deadline) {
			t.Fatalf("LSO stuck at %d below the high watermark %d: the dangling write was not aborted", st.LastStableOffset, st.HighWatermark)
		}
		time.Sleep(100 * time.Millisecond)
	}
	aborted, err := ta.store.AbortedTxns(ctx, tp, 0, 1<<62)
	if err != nil || len(aborted) != 1 || aborted[0].ProducerID != pid {
		t.Fatalf("aborted transactions %+v, %v; want the late write's", aborted, err)
	}
}
