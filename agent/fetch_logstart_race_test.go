package agent_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/metastore"
)

// logStartMovesStore moves a partition's log start to moveTo (retention,
// DeleteRecords) just before the first AbortedTxns call after armed is
// set: between a read_committed fetch reading its records and listing the
// aborted transactions over them.
type logStartMovesStore struct {
	metastore.Store
	armed  atomic.Bool
	moveTo int64
}

func (s *logStartMovesStore) AbortedTxns(ctx context.Context, tp metastore.TopicPartition, from, to int64) ([]metastore.AbortedTxn, error) {
	if s.armed.CompareAndSwap(true, false) {
		if _, err := s.Store.AdvanceLogStart(ctx, tp, s.moveTo); err != nil {
			return nil, err
		}
	}
	return s.Store.AbortedTxns(ctx, tp, from, to)
}

// TestReadCommittedFetchWhileLogStartMoves: retention moves the log start
// past an aborted transaction (pruning its aborted-transaction row) while
// a read_committed fetch that already read the transaction's records is
// about to list the aborted transactions over them. Without the row the
// records would go out as committed; the fetch answers OFFSET_OUT_OF_RANGE
// instead, as for any read below the log start, and the client resets.
func TestReadCommittedFetchWhileLogStartMoves(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		st := bk.newStorage(t)
		store := &logStartMovesStore{Store: st.openStore(t)}
		ta := startAgentOn(t, store, st.bucket, func(c *agent.Config) { c.AutoCreateTopics = false })
		admin := ta.client(t)
		createTopic(t, admin, "race", 1, nil)
		p := ta.client(t, kgo.TransactionalID("race-tx"), kgo.DefaultProduceTopic("race"))
		transact(t, p, false, "a1", "a2") // offsets 0, 1 and the ABORT marker at 2
		transact(t, p, true, "c1")        // 3 and the COMMIT marker at 4
		store.moveTo = 3

		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.IsolationLevel = 0, 1, 1<<20, 1
		topics, err := kadm.NewClient(admin).ListTopics(context.Background(), "race")
		if err != nil {
			t.Fatal(err)
		}
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "race", topics["race"].ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes, rp.LogStartOffset = 0, 1<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		store.armed.Store(true)
		resp, err := req.RequestWith(context.Background(), admin)
		if err != nil {
			t.Fatal(err)
		}
		got := resp.Topics[0].Partitions[0]
		if store.armed.Load() {
			t.Fatalf("the fetch listed no aborted transactions: nothing raced (error %v, %d bytes, HW %d, LSO %d)",
				kerr.ErrorForCode(got.ErrorCode), len(got.RecordBatches), got.HighWatermark, got.LastStableOffset)
		}
		if err := kerr.ErrorForCode(got.ErrorCode); err != kerr.OffsetOutOfRange {
			t.Fatalf("fetch from 0 while the log start moved to 3: error %v, %d bytes of records, aborted transactions %+v; want OFFSET_OUT_OF_RANGE",
				err, len(got.RecordBatches), got.AbortedTransactions)
		}
		if len(got.RecordBatches) != 0 {
			t.Fatalf("OFFSET_OUT_OF_RANGE with %d bytes of records", len(got.RecordBatches))
		}
	})
}
