package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/internal/poll"
)

// TestShareGroupKgoConsumer: franz-go's own share consumer (kgo.ShareGroup)
// reads every record of a topic through a share group on Silt, its
// records accepted as it polls.
func TestShareGroupKgoConsumer(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, shareFetchOn(time.Minute, 5))
	cl := ta.client(t)
	createTopic(t, cl, "skgo", 3, nil)
	produceN(t, cl, "skgo", 3, 20, "k-")
	consumer := ta.client(t, kgo.ShareGroup("skgog"), kgo.ConsumeTopics("skgo"))
	seen := map[string]int{}
	poll.Until(t, "every record consumed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		fs := consumer.PollFetches(ctx)
		fs.EachError(func(topic string, p int32, err error) {
			if err != context.DeadlineExceeded && !strings.Contains(err.Error(), "context deadline") {
				t.Logf("share consumer error on %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
		return len(seen) == 60
	})
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("record %s consumed %d times", v, n)
		}
	}
}

// TestShareGroupKgoTransactionMarkers: a topic written in transactions
// holds control records (commit markers) at offsets no consumer sees as
// records; franz-go's share consumer acknowledges them as gaps, so once
// every record is consumed nothing is left in flight and the lag is 0.
func TestShareGroupKgoTransactionMarkers(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, shareFetchOn(time.Minute, 5))
	cl := ta.client(t)
	createTopic(t, cl, "stx", 1, nil)
	txn := ta.client(t, kgo.TransactionalID("stx-producer"), kgo.DefaultProduceTopic("stx"))
	ctx := context.Background()
	for i := range 3 {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := range 5 {
			if err := txn.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("t%d-%d", i, j))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	consumer := ta.client(t, kgo.ShareGroup("stxg"), kgo.ConsumeTopics("stx"))
	seen := map[string]int{}
	lag := int64(-1)
	poll.Until(t, "every record consumed and nothing left in flight", func() bool {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		consumer.PollFetches(pctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
		req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
		rg.GroupID = "stxg"
		rt := kmsg.NewDescribeShareGroupOffsetsRequestGroupTopic()
		rt.Topic, rt.Partitions = "stx", []int32{0}
		rg.Topics = append(rg.Topics, rt)
		req.Groups = append(req.Groups, rg)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Groups[0].Topics) != 1 {
			return false
		}
		lag = resp.Groups[0].Topics[0].Partitions[0].Lag
		return len(seen) == 15 && lag == 0
	})
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("record %s consumed %d times", v, n)
		}
	}
}
