package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/internal/testenv"
)

// zookeeperJar is where Debian's zookeeper package puts the server.
const zookeeperJar = "/usr/share/java/zookeeper.jar"

// burrowTools finds Debian's Burrow and what it needs to start: a
// ZooKeeper server (Burrow 1.2 keeps its own state there, even with no
// Kafka in ZooKeeper) run by java. Missing, they skip the test, or fail it
// with SILT_TEST_REQUIRE_SERVICES=1 (.ci/run installs them).
func burrowTools(t *testing.T) (burrow, java string) {
	t.Helper()
	missing := func(err error) {
		msg := fmt.Sprintf("Burrow and ZooKeeper are not available: %v\n  to install: apt-get install burrow zookeeper", err)
		if testenv.RequireServices() {
			t.Fatalf("%s\n  (SILT_TEST_REQUIRE_SERVICES=1, so this is a failure)", msg)
		}
		t.Skipf("SKIPPING (set SILT_TEST_REQUIRE_SERVICES=1 to make this fail): %s", msg)
	}
	burrow, err := exec.LookPath("Burrow")
	if err != nil {
		missing(err)
	}
	java, err = exec.LookPath("java")
	if err != nil {
		missing(err)
	}
	if _, err := os.Stat(zookeeperJar); err != nil {
		missing(err)
	}
	return burrow, java
}

// startProcess runs a helper process for the test, its output kept for
// failure messages, killed when the test ends. exited is closed when it
// exits.
func startProcess(t *testing.T, name string, args ...string) (logs *testenv.SyncBuffer, exited chan struct{}) {
	t.Helper()
	logs = &testenv.SyncBuffer{}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	return logs, exited
}

// zookeeperServes says whether the ZooKeeper server at addr answers the
// srvr command: it then takes sessions (an open port alone is not enough;
// a session attempted earlier is dropped).
func zookeeperServes(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("srvr")); err != nil {
		return false
	}
	b, _ := io.ReadAll(conn)
	return strings.Contains(string(b), "Mode: standalone")
}

// burrowLag is the part of Burrow's /v3/kafka/<cluster>/consumer/<group>/lag
// answer the test reads.
type burrowLag struct {
	Error   bool   `json:"error"`
	Message string `json:"message"`
	Status  struct {
		Status   string `json:"status"`
		TotalLag int64  `json:"totallag"`
	} `json:"status"`
}

// TestBurrowReportsLag: LinkedIn's Burrow (Debian's package), which learns
// committed offsets only by consuming __consumer_offsets, reports the lag of
// a group on a three-agent cluster: 1,000 records, committed at 400, lag
// 600 (before internal topics it answered NOTFOUND). The group had a member
// first, so Burrow also reads the group's metadata records.
func TestBurrowReportsLag(t *testing.T) {
	burrow, java := burrowTools(t)
	c := startSiltCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// Burrow 1.2's cluster module asks for end offsets with ListOffsets v0:
	// refused (the connection closed), it never learns the brokers' end
	// offsets and reports no lag. Accepting the versions Kafka 3.9 accepts
	// is issue 14's "old protocol versions" item, built on its own branch;
	// until that is in, this test has nothing to check.
	versions, err := adm.ApiVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, bv := range versions {
		if v, ok := bv.KeyMinVersion(int16(kmsg.ListOffsets)); bv.Err == nil && ok && v > 0 {
			t.Skipf("SKIPPING until ListOffsets v0 is accepted (issue 14, old protocol versions): this build's minimum is v%d, and Burrow 1.2 asks with v0", v)
		}
	}
	const topic, group = "burrow-lag", "lagging-group"
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	var recs []*kgo.Record
	for i := range 1000 {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	// A consumer of the group joins, reads and leaves, so the group has
	// been saved (its metadata records are in __consumer_offsets, as in
	// Kafka) before its offset is committed from outside it.
	member, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n == 0; {
		fs := member.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("group member: %v", err)
		}
		n = fs.NumRecords()
	}
	member.Close() // leaves the group: it is saved empty
	commit := func(at int64) {
		t.Helper()
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: at, LeaderEpoch: -1})
		if r, err := adm.CommitOffsets(ctx, group, offs); err != nil || r.Error() != nil {
			t.Fatalf("commit: %v %v", err, r.Error())
		}
	}
	commit(400)

	dir := t.TempDir()
	zkAddr := freeAddr(t)
	_, zkPort, _ := net.SplitHostPort(zkAddr)
	zkLogs, zkExited := startProcess(t, java, "-cp", zookeeperJar, "-Dzookeeper.admin.enableServer=false",
		"org.apache.zookeeper.server.ZooKeeperServerMain", zkPort, filepath.Join(dir, "zk"))
	poll.Until(t, "ZooKeeper to serve", func() bool {
		select {
		case <-zkExited:
			t.Fatalf("ZooKeeper exited:\n%s", zkLogs)
		default:
		}
		return zookeeperServes(zkAddr)
	})

	httpAddr := freeAddr(t)
	servers := `"` + strings.Join(c.addrs, `", "`) + `"`
	conf := fmt.Sprintf(`[general]
pidfile = "%[1]s/burrow.pid"
[logging]
level = "info"
[zookeeper]
servers = ["%[2]s"]
root-path = "/burrow"
[client-profile.silt]
client-id = "burrow"
kafka-version = "2.0.0"
[cluster.silt]
class-name = "kafka"
servers = [%[3]s]
client-profile = "silt"
topic-refresh = 5
offset-refresh = 2
[consumer.silt]
class-name = "kafka"
cluster = "silt"
servers = [%[3]s]
client-profile = "silt"
start-latest = false
[httpserver.default]
address = "%[4]s"
[storage.default]
class-name = "inmemory"
intervals = 10
min-distance = 1
`, dir, zkAddr, servers, httpAddr)
	if err := os.WriteFile(filepath.Join(dir, "burrow.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	burrowLogs, burrowExited := startProcess(t, burrow, "--config-dir", dir)

	lag := func() (burrowLag, error) {
		var l burrowLag
		resp, err := http.Get("http://" + httpAddr + "/v3/kafka/silt/consumer/" + group + "/lag")
		if err != nil {
			return l, err
		}
		defer resp.Body.Close()
		err = json.NewDecoder(resp.Body).Decode(&l)
		return l, err
	}
	var last burrowLag
	var lastErr error
	defer func() {
		if t.Failed() {
			t.Logf("Burrow's last answer: %+v, %v\nBurrow:\n%s\nZooKeeper:\n%s", last, lastErr, burrowLogs, zkLogs)
		}
	}()
	// Burrow evaluates a group from its commits: commit the same offset
	// again while it reads __consumer_offsets and the brokers' end offsets.
	poll.Within(t, "Burrow to report the group's lag of 600", 2*time.Minute, func() bool {
		select {
		case <-burrowExited:
			t.Fatal("Burrow exited")
		default:
		}
		last, lastErr = lag()
		if lastErr == nil && !last.Error && last.Status.TotalLag == 600 {
			return true
		}
		commit(400)
		return false
	})
	t.Logf("Burrow: status %s, total lag %d", last.Status.Status, last.Status.TotalLag)
}
