package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cli runs an admin command against brokers and requires exit status 0.
func cli(t *testing.T, brokers string, args ...string) string {
	t.Helper()
	out, errOut, code := runCLI(t, append(args, "--brokers", brokers)...)
	if code != 0 {
		t.Fatalf("silt %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// produceTo writes n records to one partition and waits for the acks.
func produceTo(t *testing.T, brokers, topic string, partition int32, n int, prefix string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: partition,
			Key: []byte(fmt.Sprintf("%s-k%d", prefix, i)), Value: []byte(fmt.Sprintf("%s-v%d", prefix, i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s/%d: %v", topic, partition, err)
	}
}

// tableRow finds the whitespace-separated row of out starting with fields.
func tableRow(out string, fields ...string) []string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(fields) && strings.Join(f[:len(fields)], " ") == strings.Join(fields, " ") {
			return f
		}
	}
	return nil
}

// TestTopicCommands drives create, list, describe, alter and delete against
// a real agent (silt dev) and checks each effect through the next command.
func TestTopicCommands(t *testing.T) {
	clearSiltEnv(t)
	bin := buildSilt(t)
	kafkaAddr, httpAddr := freePort(t), freePort(t)
	p := startDev(t, bin, filepath.Join(t.TempDir(), "data"), kafkaAddr, httpAddr)
	defer p.stop(t)

	out := cli(t, kafkaAddr, "topic", "create", "orders", "-p", "2", "--config", "retention.ms=3600000")
	if !strings.Contains(out, "created topic orders (2 partitions") {
		t.Errorf("create: %s", out)
	}
	if _, errOut, code := runCLI(t, "topic", "create", "orders", "--brokers", kafkaAddr); code != 1 || !strings.Contains(errOut, "TOPIC_ALREADY_EXISTS") {
		t.Errorf("create existing: exit %d, stderr %q", code, errOut)
	}
	cli(t, kafkaAddr, "topic", "create", "orders", "--if-not-exists")
	if _, errOut, code := runCLI(t, "topic", "create", "bad", "--config", "retention.ms=soon", "--brokers", kafkaAddr); code != 1 || !strings.Contains(errOut, "INVALID_CONFIG") {
		t.Errorf("create with a bad config: exit %d, stderr %q", code, errOut)
	}

	out = cli(t, kafkaAddr, "topic", "list")
	if row := tableRow(out, "orders"); len(row) < 2 || row[1] != "2" {
		t.Errorf("list: orders row %v in\n%s", row, out)
	}
	if tableRow(out, "bad") != nil {
		t.Errorf("list shows a topic whose create failed:\n%s", out)
	}

	produceTo(t, kafkaAddr, "orders", 0, 3, "a")
	produceTo(t, kafkaAddr, "orders", 1, 2, "b")
	out = cli(t, kafkaAddr, "topic", "describe", "orders")
	// PARTITION LEADER EPOCH START-OFFSET END-OFFSET STORED-BYTES
	if row := tableRow(out, "0"); len(row) < 6 || row[3] != "0" || row[4] != "3" || row[5] == "-" || row[5] == "0" {
		t.Errorf("describe: partition 0 row %v, want offsets 0..3 and the bytes stored\n%s", row, out)
	}
	if row := tableRow(out, "1"); len(row) < 5 || row[4] != "2" {
		t.Errorf("describe: partition 1 row %v, want end offset 2\n%s", row, out)
	}
	if !strings.Contains(out, "Partitions: 2") || !strings.Contains(out, "retention.ms=3600000") {
		t.Errorf("describe: partitions or configs missing:\n%s", out)
	}
	// DeleteRecords moves partition 0's log start: describe shows it.
	kc, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	var dr kadm.Offsets
	dr.AddOffset("orders", 0, 2, -1)
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	res, err := kadm.NewClient(kc).DeleteRecords(dctx, dr)
	dcancel()
	kc.Close()
	if err != nil || res["orders"][0].Err != nil {
		t.Fatalf("delete records: %v %v", err, res["orders"][0].Err)
	}
	out = cli(t, kafkaAddr, "topic", "describe", "orders")
	if row := tableRow(out, "0"); len(row) < 5 || row[3] != "2" || row[4] != "3" {
		t.Errorf("describe after DeleteRecords: partition 0 row %v, want offsets 2..3\n%s", row, out)
	}
	if out := cli(t, kafkaAddr, "topic", "describe", "orders", "--all-configs"); !regexp.MustCompile(`cleanup.policy=delete\s+\(default_config\)`).MatchString(out) {
		t.Errorf("describe --all-configs lacks defaults:\n%s", out)
	}

	out = cli(t, kafkaAddr, "topic", "alter", "orders", "--partitions", "4", "--set", "max.message.bytes=2048", "--delete", "retention.ms")
	if !strings.Contains(out, "orders: 4 partitions") || !strings.Contains(out, "configs altered") {
		t.Errorf("alter: %s", out)
	}
	out = cli(t, kafkaAddr, "topic", "describe", "orders")
	if !strings.Contains(out, "Partitions: 4") || !strings.Contains(out, "max.message.bytes=2048") || strings.Contains(out, "retention.ms") {
		t.Errorf("describe after alter:\n%s", out)
	}
	if _, errOut, code := runCLI(t, "topic", "alter", "orders", "--partitions", "2", "--brokers", kafkaAddr); code != 1 || !strings.Contains(errOut, "orders") {
		t.Errorf("shrinking partitions: exit %d, stderr %q", code, errOut)
	}
	if _, _, code := runCLI(t, "topic", "alter", "orders", "--brokers", kafkaAddr); code != 2 {
		t.Errorf("alter with nothing to do: exit %d, want 2", code)
	}

	out = cli(t, kafkaAddr, "topic", "delete", "orders")
	if !strings.Contains(out, "deleted topic orders") {
		t.Errorf("delete: %s", out)
	}
	if out := cli(t, kafkaAddr, "topic", "list"); tableRow(out, "orders") != nil {
		t.Errorf("list after delete:\n%s", out)
	}
	if _, errOut, code := runCLI(t, "topic", "delete", "orders", "--brokers", kafkaAddr); code != 1 || !strings.Contains(errOut, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("delete missing: exit %d, stderr %q", code, errOut)
	}
	cli(t, kafkaAddr, "topic", "delete", "orders", "--if-exists")
	if _, errOut, code := runCLI(t, "topic", "describe", "orders", "--brokers", kafkaAddr); code == 0 {
		t.Errorf("describe of a deleted topic succeeded: %s", errOut)
	}

	// SILT_BROKERS is the default for --brokers.
	t.Setenv("SILT_BROKERS", kafkaAddr)
	if _, errOut, code := runCLI(t, "topic", "list", "--timeout", "10s"); code != 0 {
		t.Errorf("topic list with SILT_BROKERS: exit %d %s", code, errOut)
	}
}

// TestGroupCommands checks list and describe (lag) for a real consumer
// group that consumed and committed, then fell behind.
func TestGroupCommands(t *testing.T) {
	clearSiltEnv(t)
	bin := buildSilt(t)
	kafkaAddr, httpAddr := freePort(t), freePort(t)
	p := startDev(t, bin, filepath.Join(t.TempDir(), "data"), kafkaAddr, httpAddr)
	defer p.stop(t)

	requireGroupAPIs(t, kafkaAddr)
	cli(t, kafkaAddr, "topic", "create", "events", "-p", "2")
	produceTo(t, kafkaAddr, "events", 0, 6, "x")
	produceTo(t, kafkaAddr, "events", 1, 4, "y")

	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.ConsumerGroup("readers"),
		kgo.ConsumeTopics("events"), kgo.DisableAutoCommit(), kgo.ClientID("lag-test"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			cl.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for got := 0; got < 10; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 10 records within 60s", got)
		}
		fs.EachError(func(topic string, part int32, err error) { t.Logf("fetch %s/%d: %v", topic, part, err) })
		got += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	produceTo(t, kafkaAddr, "events", 0, 2, "x2")
	produceTo(t, kafkaAddr, "events", 1, 1, "y2")

	out := cli(t, kafkaAddr, "group", "list")
	if row := tableRow(out, "readers"); row == nil {
		t.Errorf("group list lacks readers:\n%s", out)
	}
	out = cli(t, kafkaAddr, "group", "describe", "readers")
	// TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG MEMBER CLIENT
	if row := tableRow(out, "events", "0"); len(row) < 7 || row[2] != "6" || row[3] != "8" || row[4] != "2" || row[6] != "lag-test" {
		t.Errorf("describe: partition 0 row %v, want 6 8 2 … lag-test\n%s", row, out)
	}
	if row := tableRow(out, "events", "1"); len(row) < 5 || row[2] != "4" || row[3] != "5" || row[4] != "1" {
		t.Errorf("describe: partition 1 row %v, want 4 5 1\n%s", row, out)
	}
	if !strings.Contains(out, "Total lag: 3") || !strings.Contains(out, "State: Stable") {
		t.Errorf("describe: total or state wrong:\n%s", out)
	}

	// Once the consumer leaves, the group is Empty and the lag stays.
	cl.Close()
	closed = true
	out = cli(t, kafkaAddr, "group", "describe", "readers")
	if !strings.Contains(out, "State: Empty") || !strings.Contains(out, "Total lag: 3") {
		t.Errorf("describe after the consumer left:\n%s", out)
	}
	if _, errOut, code := runCLI(t, "group", "describe", "nobody", "--brokers", kafkaAddr); code != 0 && !strings.Contains(errOut, "nobody") {
		t.Errorf("describe unknown group: exit %d %s", code, errOut)
	}
}

// requireGroupAPIs fails, naming the API, if the agent does not advertise
// the consumer-group APIs the group commands need.
func requireGroupAPIs(t *testing.T, brokers string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vs, err := kadm.NewClient(cl).ApiVersions(ctx)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	for _, v := range vs {
		for _, key := range []int16{int16(kmsg.JoinGroup), int16(kmsg.DescribeGroups), int16(kmsg.OffsetFetch)} {
			if _, ok := v.KeyMaxVersion(key); !ok {
				t.Fatalf("the agent does not advertise %s: consumer groups are part of the agent", kmsg.NameForKey(key))
			}
		}
	}
}
