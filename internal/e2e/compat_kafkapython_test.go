package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/internal/testenv"
)

// kafkaPython returns a python3 that imports kafka-python.
func kafkaPython(t *testing.T) string {
	t.Helper()
	return pythonWith(t, "kafka", "kafka-python", "python3-kafka")
}

// pythonWith returns a python3 that imports module (Debian's package pkg
// installs it for /usr/bin/python3, which a python3 earlier in PATH, e.g.
// pyenv's, does not see). Without one the test fails when services are
// required (CI), and is skipped loudly otherwise.
func pythonWith(t *testing.T, module, name, pkg string) string {
	t.Helper()
	var tried []string
	cands := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	for _, py := range cands {
		if err := exec.Command(py, "-c", "import "+module).Run(); err == nil {
			return py
		}
		tried = append(tried, py)
	}
	if testenv.RequireServices() {
		t.Fatalf("no python3 with %s among %v (apt-get install %s)", name, tried, pkg)
	}
	t.Skipf("SKIPPING: no python3 with %s among %v (apt-get install %s)", name, tried, pkg)
	return ""
}

// TestKafkaPythonAdmin: kafka-python 2.0.2's admin client (Debian's
// python3-kafka), with its default broker version detection, lists topics,
// describes the cluster and creates a topic, 10 times out of 10. It probes
// with ApiVersions v0 and Metadata v0; a close on either makes it take the
// broker for Kafka 0.8/0.9 and refuse to run.
func TestKafkaPythonAdmin(t *testing.T) {
	py := kafkaPython(t)
	addr := startCompatDev(t)
	const attempts = 10
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/kafka_python_admin.py", addr, fmt.Sprint(attempts))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()

	type result struct {
		Attempt      int      `json:"attempt"`
		APIVersion   []int    `json:"api_version"`
		TopicsBefore []string `json:"topics_before"`
		ClusterID    string   `json:"cluster_id"`
		Brokers      int      `json:"brokers"`
	}
	var ok int
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var r result
		if jerr := json.Unmarshal(sc.Bytes(), &r); jerr != nil {
			t.Fatalf("script output %q: %v", sc.Text(), jerr)
		}
		// 0.10 is the least the admin client accepts; Silt answers
		// ApiVersions, so kafka-python must see at least 0.10.
		if len(r.APIVersion) < 2 || r.APIVersion[0] == 0 && r.APIVersion[1] < 10 {
			t.Errorf("attempt %d detected broker version %v", r.Attempt, r.APIVersion)
		}
		if r.Brokers != 1 || r.ClusterID == "" {
			t.Errorf("attempt %d: describe_cluster gave %d brokers, cluster id %q", r.Attempt, r.Brokers, r.ClusterID)
		}
		// The topics of earlier attempts, beside the internal ones.
		var own int
		for _, name := range r.TopicsBefore {
			if !strings.HasPrefix(name, "__") {
				own++
			}
		}
		if own != r.Attempt {
			t.Errorf("attempt %d listed topics %v before creating its own", r.Attempt, r.TopicsBefore)
		}
		ok++
	}
	if err != nil || ok != attempts {
		t.Fatalf("%d of %d attempts succeeded; script: %v\n%s", ok, attempts, err, stderr.String())
	}

	// What the script created, seen by another client.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range attempts {
		name := fmt.Sprintf("kafka-python-%d", i)
		if d, found := td[name]; !found || len(d.Partitions) != 2 {
			t.Errorf("topic %s: found %v, partitions %d; want 2", name, found, len(d.Partitions))
		}
	}
}

// TestKafkaPythonProduceConsume: kafka-python 2.0.2's producer (acks=all,
// uncompressed and gzip) and group consumer round-trip records, each read
// back as written, and the group's commit is seen by another client.
func TestKafkaPythonProduceConsume(t *testing.T) {
	py := kafkaPython(t)
	addr := startCompatDev(t)
	const n = 200
	for _, codec := range []string{"none", "gzip"} {
		topic := "kafka-python-" + codec
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, py, "testdata/kafka_python_clients.py", addr, topic, codec, fmt.Sprint(n))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("%s: %v\n%s", codec, err, stderr.String())
		}
		// One partition (auto-created): offset i holds record i.
		sc := bufio.NewScanner(&stdout)
		i := 0
		for sc.Scan() {
			var p, off int
			var key, value string
			if _, err := fmt.Sscan(sc.Text(), &p, &off, &key, &value); err != nil {
				t.Fatalf("%s: line %q: %v", codec, sc.Text(), err)
			}
			if p != 0 || off != i || key != fmt.Sprintf("key-%04d", i) || value != fmt.Sprintf("value-%04d", i) {
				t.Fatalf("%s: record %d read as %q", codec, i, sc.Text())
			}
			i++
		}
		if i != n {
			t.Fatalf("%s: consumed %d records, want %d", codec, i, n)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), "kafka-python-"+topic)
		cl.Close()
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := offs.Lookup(topic, 0); !ok || o.At != n {
			t.Fatalf("%s: committed offset %+v, want %d", codec, o, n)
		}
	}
}
