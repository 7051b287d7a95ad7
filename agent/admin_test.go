package agent_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
)

func TestTopicAdmin(t *testing.T) {
	forEachBackend(t, testTopicAdmin)
}

func testTopicAdmin(t *testing.T, bk backend) {
	ta := startAgent(t, bk, func(c *agent.Config) { c.AutoCreateTopics = false })
	cl := ta.client(t)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Metadata for a missing topic with auto-creation off.
	md, err := adm.Metadata(ctx, "ghost")
	if err != nil {
		t.Fatal(err)
	}
	if err := md.Topics["ghost"].Err; !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("metadata of a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}

	// validate-only creates nothing; bad names and configs are refused.
	if r, err := adm.ValidateCreateTopics(ctx, 3, 1, nil, "planned"); err != nil || r["planned"].Err != nil {
		t.Fatalf("validate-only create: %v %v", err, r["planned"].Err)
	}
	if r, _ := adm.CreateTopics(ctx, 1, 1, nil, "bad/name"); !errors.Is(r["bad/name"].Err, kerr.InvalidTopicException) {
		t.Fatalf("bad topic name: %v", r["bad/name"].Err)
	}
	if r, _ := adm.CreateTopics(ctx, 1, 1, map[string]*string{"retention.ms": ptr("soon")}, "badcfg"); !errors.Is(r["badcfg"].Err, kerr.InvalidConfig) {
		t.Fatalf("bad config value: %v", r["badcfg"].Err)
	}
	if r, _ := adm.CreateTopics(ctx, 1, 1, map[string]*string{"no.such.key": ptr("1")}, "badkey"); !errors.Is(r["badkey"].Err, kerr.InvalidConfig) {
		t.Fatalf("unknown config key: %v", r["badkey"].Err)
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) != 0 {
		t.Fatalf("topics after validate-only and refused creates: %v", topics.Names())
	}

	createTopic(t, cl, "t1", 2, map[string]*string{"retention.ms": ptr("1000")})
	if r, _ := adm.CreateTopics(ctx, 1, 1, nil, "t1"); !errors.Is(r["t1"].Err, kerr.TopicAlreadyExists) {
		t.Fatalf("create existing: %v", r["t1"].Err)
	}

	// Configs: describe shows explicit and default values with their source.
	rc, err := adm.DescribeTopicConfigs(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := configMap(t, rc)
	if c := cfg["retention.ms"]; c.Value == nil || *c.Value != "1000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms = %+v", c)
	}
	if c := cfg["cleanup.policy"]; c.Value == nil || *c.Value != "delete" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("cleanup.policy = %+v", c)
	}

	// Incremental: set one, delete another; validate-only changes nothing.
	alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: ptr("2048")}, {Op: kadm.DeleteConfig, Name: "retention.ms"}}
	if r, err := adm.ValidateAlterTopicConfigs(ctx, alter, "t1"); err != nil || r[0].Err != nil {
		t.Fatalf("validate incremental alter: %v %v", err, r)
	}
	if c := configMap(t, mustDescribe(t, adm, "t1"))["retention.ms"]; *c.Value != "1000" {
		t.Fatalf("validate-only alter changed retention.ms to %s", *c.Value)
	}
	if r, err := adm.AlterTopicConfigs(ctx, alter, "t1"); err != nil || r[0].Err != nil {
		t.Fatalf("incremental alter: %v %v", err, r)
	}
	cfg = configMap(t, mustDescribe(t, adm, "t1"))
	if *cfg["max.message.bytes"].Value != "2048" || *cfg["retention.ms"].Value != "604800000" {
		t.Fatalf("after alter: max.message.bytes=%s retention.ms=%s", *cfg["max.message.bytes"].Value, *cfg["retention.ms"].Value)
	}
	if r, _ := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "compression.type", Value: ptr("brotli")}}, "t1"); r[0].Err == nil {
		t.Fatal("invalid compression.type accepted")
	}
	// Legacy AlterConfigs replaces the whole set.
	if r, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "cleanup.policy", Value: ptr("compact")}}, "t1"); err != nil || r[0].Err != nil {
		t.Fatalf("alter configs: %v %v", err, r)
	}
	cfg = configMap(t, mustDescribe(t, adm, "t1"))
	if *cfg["cleanup.policy"].Value != "compact" || cfg["max.message.bytes"].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("after AlterConfigs: cleanup.policy=%s max.message.bytes source %v", *cfg["cleanup.policy"].Value, cfg["max.message.bytes"].Source)
	}

	// Partitions grow, never shrink; validate-only is honoured.
	if r, err := adm.ValidateCreatePartitions(ctx, 3, "t1"); err != nil || r["t1"].Err != nil {
		t.Fatalf("validate create partitions: %v %v", err, r)
	}
	if n := partitionCount(t, adm, "t1"); n != 2 {
		t.Fatalf("validate-only grew the topic to %d", n)
	}
	if r, _ := adm.UpdatePartitions(ctx, 1, "t1"); !errors.Is(r["t1"].Err, kerr.InvalidPartitions) {
		t.Fatalf("shrink: %v", r["t1"].Err)
	}
	if r, err := adm.UpdatePartitions(ctx, 5, "t1"); err != nil || r["t1"].Err != nil {
		t.Fatalf("grow: %v %v", err, r)
	}
	if n := partitionCount(t, adm, "t1"); n != 5 {
		t.Fatalf("partitions = %d, want 5", n)
	}

	// Broker configs are described, not altered.
	brc, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil || len(brc) == 0 || brc[0].Err != nil || len(brc[0].Configs) == 0 {
		t.Fatalf("describe broker configs: %v %+v", err, brc)
	}

	// DescribeCluster lists this agent.
	cluster, err := adm.BrokerMetadata(ctx)
	if err != nil || len(cluster.Brokers) != 1 || cluster.Brokers[0].Host != "127.0.0.1" {
		t.Fatalf("broker metadata: %v %+v", err, cluster)
	}

	// Delete, then producing to it fails.
	if r, err := adm.DeleteTopics(ctx, "t1"); err != nil || r["t1"].Err != nil {
		t.Fatalf("delete: %v %v", err, r)
	}
	if r, _ := adm.DeleteTopics(ctx, "t1"); !errors.Is(r["t1"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("delete missing: %v", r["t1"].Err)
	}
	if code := rawProduce(t, cl, "t1", 0, batch("x")); code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("produce to deleted topic: %v", kerr.ErrorForCode(code))
	}
}

func mustDescribe(t *testing.T, adm *kadm.Client, topic string) kadm.ResourceConfigs {
	t.Helper()
	rc, err := adm.DescribeTopicConfigs(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func configMap(t *testing.T, rc kadm.ResourceConfigs) map[string]kadm.Config {
	t.Helper()
	if len(rc) != 1 || rc[0].Err != nil {
		t.Fatalf("describe configs: %+v", rc)
	}
	out := make(map[string]kadm.Config)
	for _, c := range rc[0].Configs {
		out[c.Key] = c
	}
	return out
}

func partitionCount(t *testing.T, adm *kadm.Client, topic string) int {
	t.Helper()
	td, err := adm.ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return len(td[topic].Partitions)
}

func TestAutoCreateOnMetadata(t *testing.T) {
	forEachBackend(t, testAutoCreateOnMetadata)
}

func testAutoCreateOnMetadata(t *testing.T, bk backend) {
	ta := startAgent(t, bk, func(c *agent.Config) { c.AutoCreateTopics = true; c.DefaultPartitions = 3 })
	cl := ta.client(t, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("auto"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce to an auto-created topic: %v", err)
	}
	if n := partitionCount(t, kadm.NewClient(cl), "auto"); n != 3 {
		t.Fatalf("auto-created topic has %d partitions, want num.partitions=3", n)
	}
}

// Issue 11, item 10: IncrementalAlterConfigs is a read-modify-write;
// concurrent ones on different keys of one topic must all take effect.
func TestConcurrentIncrementalAlterConfigs(t *testing.T) {
	forEachBackend(t, testConcurrentIncrementalAlterConfigs)
}

func testConcurrentIncrementalAlterConfigs(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t)
	createTopic(t, cl, "cfg", 1, nil)
	adm := kadm.NewClient(cl)
	keys := map[string]string{
		"retention.ms": "1000", "retention.bytes": "2000", "segment.bytes": "1048576", "segment.ms": "4000",
		"min.compaction.lag.ms": "5000", "delete.retention.ms": "6000", "max.compaction.lag.ms": "7000",
		"segment.index.bytes": "8192", "segment.jitter.ms": "9000", "index.interval.bytes": "10000",
		"flush.messages": "11000", "flush.ms": "12000", "file.delete.delay.ms": "13000",
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for k, v := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: k, Value: &v}}, "cfg")
			if err != nil {
				t.Error(err)
				return
			}
			if r, _ := resp.On("cfg", nil); r.Err != nil {
				t.Errorf("set %s: %v", k, r.Err)
			}
		}()
	}
	wg.Wait()
	topic, err := ta.store.Topic(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range keys {
		if topic.Config[k] != v {
			t.Errorf("%s = %q after concurrent alters, want %q (a change was lost)", k, topic.Config[k], v)
		}
	}
}
