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
	poll.Until(t, "every record consumed and nothing left in flight", func() bool {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		consumer.PollFetches(pctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
		return len(seen) == 15 && shareLag(ctx, cl, "stxg", "stx") == 0
	})
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("record %s consumed %d times", v, n)
		}
	}
}

// TestShareGroupReadCommitted: a share group with share.isolation.level
// read_committed (a group config) gets committed transactions' records,
// never an aborted one's, and an open transaction's only once it
// commits; afterwards nothing is left in flight.
func TestShareGroupReadCommitted(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, shareGroupsOn)
	cl := ta.client(t)
	ctx := context.Background()
	createTopic(t, cl, "src", 1, nil)
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "srcg"
	for _, kv := range [][2]string{{"share.isolation.level", "read_committed"}, {"share.auto.offset.reset", "earliest"}} {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = kv[0], kmsg.StringPtr(kv[1])
		res.Configs = append(res.Configs, c)
	}
	req.Resources = append(req.Resources, res)
	if resp, err := req.RequestWith(ctx, cl); err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("set group configs: %+v, %v", resp, err)
	}
	txn := ta.client(t, kgo.TransactionalID("src-producer"), kgo.DefaultProduceTopic("src"))
	write := func(prefix string, end func() error) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			if err := txn.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("%s-%d", prefix, j))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if end != nil {
			if err := end(); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("committed", func() error { return txn.EndTransaction(ctx, kgo.TryCommit) })
	write("aborted", func() error { return txn.EndTransaction(ctx, kgo.TryAbort) })
	write("open", nil) // left open for now

	consumer := ta.client(t, kgo.ShareGroup("srcg"), kgo.ConsumeTopics("src"))
	seen := map[string]int{}
	consume := func() {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		consumer.PollFetches(pctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	poll.Until(t, "the committed transaction consumed", func() bool {
		consume()
		return len(seen) >= 3
	})
	for range 3 {
		consume()
	}
	for v := range seen {
		if !strings.HasPrefix(v, "committed-") {
			t.Fatalf("read_committed share group got %q before it was committed, or aborted", v)
		}
	}
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the transaction committed later consumed and nothing left in flight", func() bool {
		consume()
		return len(seen) >= 6 && shareLag(ctx, cl, "srcg", "src") == 0
	})
	for v, n := range seen {
		if strings.HasPrefix(v, "aborted-") || n != 1 {
			t.Fatalf("record %s consumed %d times", v, n)
		}
	}
}

// shareLag is a share group's lag on partition 0 of topic, or -1.
func shareLag(ctx context.Context, cl *kgo.Client, group, topic string) int64 {
	req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
	rg.GroupID = group
	rt := kmsg.NewDescribeShareGroupOffsetsRequestGroupTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	rg.Topics = append(rg.Topics, rt)
	req.Groups = append(req.Groups, rg)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Groups) != 1 || len(resp.Groups[0].Topics) != 1 {
		return -1
	}
	return resp.Groups[0].Topics[0].Partitions[0].Lag
}
