package agent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupTransactSessionCopy: a consume-transform-produce pipeline with
// franz-go's GroupTransactSession copies a topic through a three-agent
// cluster; the output read with read_committed is exactly the input.
func TestGroupTransactSessionCopy(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, "", "", "")
	admin := agents[0].client(t)
	createTopic(t, admin, "copy-in", 3, nil)
	createTopic(t, admin, "copy-out", 3, nil)
	const n = 300
	var want []string
	// A bound for a stuck run, not a performance expectation: CI machines
	// are small and shared.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var records []*kgo.Record
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("r-%03d", i)
		want = append(want, v)
		records = append(records, &kgo.Record{Topic: "copy-in", Value: []byte(v)})
	}
	if err := admin.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(agents[0].addr, agents[1].addr, agents[2].addr),
		kgo.TransactionalID("copier"), kgo.DefaultProduceTopic("copy-out"),
		kgo.ConsumerGroup("copiers"), kgo.ConsumeTopics("copy-in"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	copied := 0
	for copied < n && ctx.Err() == nil {
		fs := sess.PollFetches(ctx)
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Topic: "copy-out", Value: r.Value}, nil)
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatalf("end transaction: %v", err)
		}
		if committed {
			copied += fs.NumRecords()
		}
	}
	got := consumeValues(t, agents[1], "copy-out", kgo.ReadCommitted(), n)
	if !equal(got, want) {
		t.Fatalf("output has %d records, want exactly the %d input records", len(got), n)
	}
}
