package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/testenv"
)

// TestKcatDev: kcat produces 1,000 lines to `silt dev` and consumes them
// back identical.
func TestKcatDev(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if testenv.RequireServices() {
			t.Fatalf("kcat not found (apt-get install kcat): %v", err)
		}
		t.Skipf("SKIPPING: kcat not found (apt-get install kcat): %v", err)
	}
	addr := freeAddr(t)
	startSilt(t, addr, nil, "dev", "--data-dir", t.TempDir())

	var in strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&in, "line %04d: the quick brown fox jumps over the lazy dog\n", i)
	}
	produce := exec.Command(kcat, "-P", "-b", addr, "-t", "kcat-lines", "-X", "request.required.acks=all")
	produce.Stdin = strings.NewReader(in.String())
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	consume := exec.CommandContext(ctx, kcat, "-C", "-b", addr, "-t", "kcat-lines", "-o", "beginning", "-e", "-q")
	var out, errb bytes.Buffer
	consume.Stdout, consume.Stderr = &out, &errb
	if err := consume.Run(); err != nil {
		t.Fatalf("kcat -C: %v\n%s", err, errb.String())
	}
	if out.String() != in.String() {
		got := strings.Split(out.String(), "\n")
		t.Fatalf("consumed %d lines that differ from the 1000 produced (first: %q)", len(got)-1, got[0])
	}
}

// TestDevRestartKeepsEverything: 100,000 records of 1 KiB to 16 partitions
// with acks=all; every one is read back in order, and again after the agent
// restarts.
func TestDevRestartKeepsEverything(t *testing.T) {
	const partitions, perPartition = 16, 100000 / 16
	addr := freeAddr(t)
	dir := t.TempDir()
	p := startSilt(t, addr, nil, "dev", "--data-dir", dir)
	createTopic(t, addr, "bulk", partitions)

	var ack acked
	start := time.Now()
	if failed := produceLoad(context.Background(), addr, "bulk", partitions, partitions*perPartition, &ack); failed > 0 {
		t.Fatalf("%d produce requests failed", failed)
	}
	t.Logf("produced %d records of 1 KiB in %v", ack.n.Load(), time.Since(start))
	checkInOrder(t, consumeAll(t, addr, "bulk"), partitions, perPartition)

	p.stop()
	p.start()
	checkInOrder(t, consumeAll(t, addr, "bulk"), partitions, perPartition)
}
