package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/testenv"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKcatBalancedConsumer: librdkafka's balanced consumer (`kcat -G`) joins
// a group on `silt dev`, reads every record of a 4-partition topic and
// commits its offsets.
func TestKcatBalancedConsumer(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not found (apt-get install kcat): %v", err)
	}
	addr := freeAddr(t)
	startSilt(t, addr, nil, "dev", "--data-dir", t.TempDir())

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, "kcat-group"); err != nil {
		t.Fatal(err)
	}
	const perPartition = 50
	var rs []*kgo.Record
	for p := int32(0); p < 4; p++ {
		for i := 0; i < perPartition; i++ {
			rs = append(rs, &kgo.Record{Topic: "kcat-group", Partition: p, Value: []byte(fmt.Sprintf("%d-%d", p, i))})
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	kctx, kcancel := context.WithCancel(ctx)
	defer kcancel()
	cmd := exec.CommandContext(kctx, kcat, "-b", addr, "-G", "kg", "-q", "-u", "-f", "%s\n",
		"-X", "auto.offset.reset=earliest", "-X", "auto.commit.interval.ms=100", "kcat-group")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { kcancel(); cmd.Wait() }()
	seen := map[string]bool{}
	sc := bufio.NewScanner(out)
	for len(seen) < 4*perPartition && sc.Scan() {
		seen[sc.Text()] = true
	}
	if len(seen) < 4*perPartition {
		t.Fatalf("kcat read %d distinct records, want %d\n%s", len(seen), 4*perPartition, stderr.String())
	}

	// The group is stable with kcat as its only member, and its commits
	// reach the end of every partition.
	deadline := time.Now().Add(30 * time.Second)
	for {
		os, err := adm.FetchOffsets(ctx, "kg")
		done := err == nil && len(os["kcat-group"]) == 4
		for _, o := range os["kcat-group"] {
			done = done && o.At == perPartition
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed offsets = %+v, %v; want %d on each partition\n%s", os, err, perPartition, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ds, err := adm.DescribeGroups(ctx, "kg")
	if err != nil {
		t.Fatal(err)
	}
	if d := ds["kg"]; d.State != "Stable" || len(d.Members) != 1 {
		t.Fatalf("describe kg = %+v", d)
	}
}
