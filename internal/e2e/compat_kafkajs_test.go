package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/internal/testenv"
)

// kafkajsDir is where testdata/kafkajs/package-lock.json pins kafkajs and
// its codec plugins; npm ci installs them into its node_modules
// (git-ignored).
const kafkajsDir = "testdata/kafkajs"

// kafkajsInstalled returns the node binary once kafkajsDir/node_modules
// holds what package-lock.json pins, running `npm ci` when it does not (a
// fresh clone, or a changed lock file). A stamp with the lock file's hash
// marks a finished install, so later runs reuse it; an flock on the lock
// file keeps two test processes from installing at once.
func kafkajsInstalled(t *testing.T) string {
	t.Helper()
	node, nerr := exec.LookPath("node")
	npm, perr := exec.LookPath("npm")
	if nerr != nil || perr != nil {
		msg := fmt.Sprintf("node and npm are needed for kafkajs (apt-get install nodejs npm): node: %v, npm: %v", nerr, perr)
		if testenv.RequireServices() {
			t.Fatal(msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
	lockPath := filepath.Join(kafkajsDir, "package-lock.json")
	lock, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(kafkajsDir, "node_modules", ".silt-installed")

	f, err := os.Open(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("lock %s: %v", lockPath, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing unlocks too

	if got, err := os.ReadFile(stamp); err == nil && string(got) == want {
		return node
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// --ignore-scripts: everything pinned is plain JavaScript or
	// WebAssembly; nothing needs building.
	cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = kafkajsDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s (installs kafkajs from the npm registry): %v\n%s", kafkajsDir, err, out)
	}
	if err := os.WriteFile(stamp, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	return node
}

// runKafkaJS runs one step of testdata/kafkajs/matrix.js and returns its
// JSON lines, each decoded into a map of raw fields.
func runKafkaJS(t *testing.T, node, brokers string, args ...string) []map[string]json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"matrix.js", brokers}, args...)...)
	cmd.Dir = kafkajsDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var lines []map[string]json.RawMessage
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		var m map[string]json.RawMessage
		if jerr := json.Unmarshal(sc.Bytes(), &m); jerr != nil {
			t.Fatalf("kafkajs %v: output %q: %v\nstderr:\n%s", args, sc.Text(), jerr, stderr.String())
		}
		lines = append(lines, m)
	}
	if err != nil {
		t.Fatalf("kafkajs %v: %v\nstderr:\n%s", args, err, stderr.String())
	}
	return lines
}

// linesWith decodes the lines that have field into T.
func linesWith[T any](t *testing.T, lines []map[string]json.RawMessage, field string) []T {
	t.Helper()
	var out []T
	for _, m := range lines {
		if _, ok := m[field]; !ok {
			continue
		}
		b, _ := json.Marshal(m)
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("line %s: %v", b, err)
		}
		out = append(out, v)
	}
	return out
}

// oneLineWith is linesWith for a field reported once.
func oneLineWith[T any](t *testing.T, lines []map[string]json.RawMessage, field string) T {
	t.Helper()
	vs := linesWith[T](t, lines, field)
	if len(vs) != 1 {
		t.Fatalf("want one line with %q, got %d", field, len(vs))
	}
	return vs[0]
}

// readRecords reads topic from the start through seed until every
// partition has been read up to ends.
func readRecords(t *testing.T, seed, topic string, iso kgo.IsolationLevel, ends map[int32]int64) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	next := make(map[int32]int64)
	done := func() bool {
		for p, e := range ends {
			if next[p] < e {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []*kgo.Record
	for !done() && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	if !done() {
		t.Fatalf("read %s to %v, want %v", topic, next, ends)
	}
	return out
}

// committedOffsets returns group's committed offsets of topic.
func committedOffsets(t *testing.T, seed, group, topic string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := make(map[int32]int64)
	for p, o := range offs[topic] {
		if o.Err != nil {
			t.Fatalf("fetch offsets of %s: %s/%d: %v", group, topic, p, o.Err)
		}
		out[p] = o.At
	}
	return out
}

// TestKafkaJS: kafkajs 2.2.4 (npm) against three agents on Postgres and
// MinIO: produce with every codec and consume in a group (content checked
// record by record, and read again by franz-go, which sees kafkajs' codec
// on every batch); a group whose second member joins and leaves while
// records flow, each record consumed exactly once; the admin client; and
// transactions with commit, abort and sendOffsets under read_committed.
func TestKafkaJS(t *testing.T) {
	node := kafkajsInstalled(t)
	c := startSiltCluster(t, 3)

	codecs := []struct {
		name string
		attr uint8 // kgo's RecordAttrs.CompressionType
	}{{"none", 0}, {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}}
	for _, codec := range codecs {
		t.Run("produce/"+codec.name, func(t *testing.T) {
			kafkaJSProduce(t, node, c, codec.name, codec.attr)
		})
	}
	t.Run("group", func(t *testing.T) { kafkaJSGroup(t, node, c) })
	t.Run("admin", func(t *testing.T) { kafkaJSAdmin(t, node, c) })
	t.Run("txn", func(t *testing.T) { kafkaJSTxn(t, node, c) })
}

func kafkaJSProduce(t *testing.T, node string, c *siltCluster, codec string, attr uint8) {
	const partitions, perPartition = 3, 60
	topic := "kafkajs-" + codec
	lines := runKafkaJS(t, node, strings.Join(c.addrs, ","), "produce", codec)

	type sent struct {
		Partition  int32 `json:"sent"`
		BaseOffset int64 `json:"base_offset"`
		ErrorCode  int   `json:"error_code"`
		Start      int64 `json:"start"`
	}
	ss := linesWith[sent](t, lines, "sent")
	if len(ss) != partitions*3 {
		t.Fatalf("%d partition acks for 3 sends, want %d: %+v", len(ss), partitions*3, ss)
	}
	for _, s := range ss {
		// Each send is 20 records per partition, in order.
		if s.ErrorCode != 0 || s.BaseOffset != s.Start {
			t.Errorf("send at record %d: partition %d acked with error %d at base offset %d, want %d",
				s.Start, s.Partition, s.ErrorCode, s.BaseOffset, s.Start)
		}
	}

	type consumed struct {
		P int32  `json:"p"`
		O int64  `json:"o"`
		K string `json:"k"`
		V string `json:"v"`
	}
	seen := make(map[[2]int64]bool)
	for _, r := range linesWith[consumed](t, lines, "p") {
		at := [2]int64{int64(r.P), r.O}
		if seen[at] {
			t.Errorf("kafkajs consumed partition %d offset %d twice", r.P, r.O)
		}
		seen[at] = true
		if r.P < 0 || r.P >= partitions || r.O < 0 || r.O >= perPartition ||
			r.K != string(compatKey(r.P, int(r.O))) || r.V != string(compatValue(r.P, int(r.O))) {
			t.Errorf("kafkajs consumed partition %d offset %d as key %q value %q", r.P, r.O, r.K, r.V)
		}
	}
	if len(seen) != partitions*perPartition {
		t.Fatalf("kafkajs consumed %d distinct records, want %d", len(seen), partitions*perPartition)
	}

	// franz-go reads the same records, in batches kafkajs compressed.
	ends := map[int32]int64{}
	for p := range int32(partitions) {
		ends[p] = perPartition
	}
	recs := readRecords(t, c.addrs[1], topic, kgo.ReadUncommitted(), ends)
	if len(recs) != partitions*perPartition {
		t.Fatalf("franz-go read %d records, want %d", len(recs), partitions*perPartition)
	}
	for _, r := range recs {
		i := int(r.Offset)
		if !bytes.Equal(r.Key, compatKey(r.Partition, i)) || !bytes.Equal(r.Value, compatValue(r.Partition, i)) {
			t.Fatalf("franz-go read partition %d offset %d as key %q value %q", r.Partition, r.Offset, r.Key, r.Value)
		}
		if got := r.Attrs.CompressionType(); got != attr {
			t.Fatalf("partition %d offset %d: batch compression %d, want %d (%s)", r.Partition, r.Offset, got, attr, codec)
		}
	}
	if got := committedOffsets(t, c.addrs[2], topic, topic); !maps.Equal(got, ends) {
		t.Fatalf("group %s committed %v, want %v", topic, got, ends)
	}
}

func kafkaJSGroup(t *testing.T, node string, c *siltCluster) {
	const topic, partitions = "kafkajs-group", 6
	lines := runKafkaJS(t, node, strings.Join(c.addrs, ","), "group")

	type produced struct {
		Phase string `json:"produced"`
		Count int    `json:"count"`
	}
	want := make(map[string]bool)
	for _, p := range linesWith[produced](t, lines, "produced") {
		for i := range p.Count {
			want[fmt.Sprintf("%s-%04d", p.Phase, i)] = true
		}
	}
	if len(want) != 480 {
		t.Fatalf("script reported %d records produced, want 480", len(want))
	}

	type consumed struct {
		Member string `json:"member"`
		P      int32  `json:"p"`
		O      int64  `json:"o"`
		V      string `json:"v"`
	}
	got := make(map[string]string)
	perMember := make(map[string]int)
	for _, r := range linesWith[consumed](t, lines, "member") {
		if !want[r.V] {
			t.Errorf("member %s consumed %q (partition %d offset %d), never produced", r.Member, r.V, r.P, r.O)
		}
		if m, dup := got[r.V]; dup {
			t.Errorf("%q consumed twice: by %s and by %s", r.V, m, r.Member)
		}
		got[r.V] = r.Member
		perMember[r.Member]++
	}
	if len(got) != len(want) {
		t.Fatalf("consumed %d of %d records", len(got), len(want))
	}
	if perMember["B"] == 0 || perMember["A"] == 0 {
		t.Fatalf("records per member %v: both members must have consumed", perMember)
	}

	type join struct {
		Member     string  `json:"join"`
		Assignment []int32 `json:"assignment"`
	}
	joins := linesWith[join](t, lines, "join")
	var lastA, lastB []int32
	for _, j := range joins {
		switch j.Member {
		case "A":
			lastA = j.Assignment
		case "B":
			lastB = j.Assignment
		}
	}
	if len(lastB) == 0 || len(lastB) == partitions {
		t.Fatalf("B's assignment %v: want a share of the %d partitions", lastB, partitions)
	}
	if !slices.Equal(lastA, []int32{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("A's assignment after B left: %v, want every partition", lastA)
	}

	type describe struct {
		Group        string `json:"describe"`
		State        string `json:"state"`
		ProtocolType string `json:"protocol_type"`
		Members      int    `json:"members"`
	}
	d := oneLineWith[describe](t, lines, "describe")
	if d.State != "Stable" || d.ProtocolType != "consumer" || d.Members != 2 {
		t.Fatalf("describeGroups with two members: %+v", d)
	}

	offs := committedOffsets(t, c.addrs[0], topic, topic)
	var sum int64
	for _, o := range offs {
		sum += o
	}
	if len(offs) != partitions || sum != int64(len(want)) {
		t.Fatalf("group committed %v (sum %d), want every partition's end (sum %d)", offs, sum, len(want))
	}
}

func kafkaJSAdmin(t *testing.T, node string, c *siltCluster) {
	lines := runKafkaJS(t, node, strings.Join(c.addrs, ","), "admin")
	field := func(name string) json.RawMessage {
		t.Helper()
		for _, m := range lines {
			if v, ok := m[name]; ok {
				return v
			}
		}
		t.Fatalf("no %q in the script's output", name)
		return nil
	}
	check := func(name, want string) {
		t.Helper()
		var got, w any
		if err := json.Unmarshal(field(name), &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(want), &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s: got %s, want %s", name, field(name), want)
		}
	}
	check("brokers", "3")
	if string(field("cluster_id")) == `""` {
		t.Errorf("describeCluster: empty cluster id")
	}
	check("listed_after_create", "true")
	check("partitions", "[0,1,2,3]")
	check("leaders", "true")
	check("retention_created", `"86400000"`)
	check("retention_altered", `"3600000"`)
	check("topic_offsets", "[[0,0,0],[1,0,3],[2,0,0],[3,0,2]]")
	// kafkajs asks for every partition of the topic; those without a commit
	// answer -1.
	check("fetch_offsets", "[[0,-1],[1,2],[2,-1],[3,1]]")
	check("listed_group", "true")
	check("state", `"Empty"`)
	check("members", "0")
	check("listed_group_after_delete", "false")
	check("listed_after_delete", "false")
}

func kafkaJSTxn(t *testing.T, node string, c *siltCluster) {
	const topic, input, group = "kafkajs-txn", "kafkajs-txn-in", "kafkajs-txn-group"
	lines := runKafkaJS(t, node, strings.Join(c.addrs, ","), "txn")

	type txn struct {
		Name  string `json:"txn"`
		Count int    `json:"count"`
	}
	committed := make(map[string]bool)
	aborted := make(map[string]bool)
	for _, x := range linesWith[txn](t, lines, "txn") {
		for i := range x.Count {
			v := fmt.Sprintf("%s-%04d", x.Name, i)
			if strings.HasPrefix(x.Name, "aborted") {
				aborted[v] = true
			} else {
				committed[v] = true
			}
		}
	}
	if len(committed) != 32 || len(aborted) != 30 {
		t.Fatalf("script reported %d committed and %d aborted records, want 32 and 30", len(committed), len(aborted))
	}
	check := func(who string, values []string) {
		t.Helper()
		seen := make(map[string]bool)
		for _, v := range values {
			switch {
			case aborted[v]:
				t.Errorf("%s read aborted record %q", who, v)
			case !committed[v]:
				t.Errorf("%s read %q, never produced", who, v)
			case seen[v]:
				t.Errorf("%s read %q twice", who, v)
			}
			seen[v] = true
		}
		if len(seen) != len(committed) {
			t.Errorf("%s read %d of %d committed records", who, len(seen), len(committed))
		}
	}
	type read struct {
		V string `json:"read_committed"`
	}
	var values []string
	for _, r := range linesWith[read](t, lines, "read_committed") {
		values = append(values, r.V)
	}
	check("kafkajs read_committed", values)

	type groupOffsets struct {
		Offsets [][2]int64 `json:"group_offsets"`
	}
	if g := oneLineWith[groupOffsets](t, lines, "group_offsets"); !slices.Equal(g.Offsets, [][2]int64{{0, 10}}) {
		t.Fatalf("kafkajs fetchOffsets after sendOffsets: %v, want [[0 10]]", g.Offsets)
	}
	if got := committedOffsets(t, c.addrs[1], group, input); !maps.Equal(got, map[int32]int64{0: 10}) {
		t.Fatalf("franz-go fetches %s's offsets %v, want partition 0 at 10 (the aborted sendOffsets said 99)", group, got)
	}

	// franz-go agrees: read_committed sees the committed records, and
	// read_uncommitted sees the aborted ones too, so they were written.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs[2]))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends := waitStable(t, kadm.NewClient(cl), topic, 30*time.Second)
	rc, _ := readToEnd(t, c.addrs[2], "kafkajs-txn-check", topic, kgo.ReadCommitted(), ends)
	check("franz-go read_committed", rc)
	ru, _ := readToEnd(t, c.addrs[2], "kafkajs-txn-check", topic, kgo.ReadUncommitted(), ends)
	if len(ru) != len(committed)+len(aborted) {
		t.Fatalf("franz-go read_uncommitted read %d records, want %d committed + %d aborted", len(ru), len(committed), len(aborted))
	}
}
