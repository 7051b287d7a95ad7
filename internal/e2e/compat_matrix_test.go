package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The client matrix: clients Silt's users run, each driven by a script in
// its own language (testdata/kafkajs/matrix.js,
// testdata/confluent_kafka_matrix.py) against a three-agent cluster, one
// step per run: produce with each codec and consume, a group whose second
// member joins and leaves, admin calls, and transactions. A script prints
// JSON lines saying what it did and read; the checks here hold every
// client to the same content, and read what it wrote again with franz-go.

// matrixCodecs are the codecs every script produces with, and the
// compression attribute franz-go must see on their batches.
var matrixCodecs = []struct {
	name string
	attr uint8 // kgo's RecordAttrs.CompressionType
}{{"none", 0}, {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}}

// matrixAdmin is what every script's admin step must report: the cluster
// of three agents; a topic created with 2 partitions and retention.ms
// 86400000 and listed, grown to 4 (each with a leader), retention.ms
// altered to 3600000, 3 records produced to partition 1 and 2 to partition
// 3 ([partition, low, high] per partition); a group given offsets on that
// topic, listed and described (no members); the topic deleted and no
// longer listed. Clients add what else they report.
func matrixAdmin() map[string]string {
	return map[string]string{
		"brokers":             "3",
		"listed_after_create": "true",
		"partitions":          "[0,1,2,3]",
		"leaders":             "true",
		"retention_created":   `"86400000"`,
		"retention_altered":   `"3600000"`,
		"topic_offsets":       "[[0,0,0],[1,0,3],[2,0,0],[3,0,2]]",
		"listed_group":        "true",
		"state":               `"Empty"`,
		"members":             "0",
		"listed_after_delete": "false",
	}
}

// runMatrixScript runs a client matrix script and returns its JSON lines,
// each decoded into a map of raw fields; a script that fails fails t.
func runMatrixScript(t *testing.T, cmd *exec.Cmd) []map[string]json.RawMessage {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var lines []map[string]json.RawMessage
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		var m map[string]json.RawMessage
		if jerr := json.Unmarshal(sc.Bytes(), &m); jerr != nil {
			t.Fatalf("%v: output %q: %v\nstderr:\n%s", cmd.Args[1:], sc.Text(), jerr, stderr.String())
		}
		lines = append(lines, m)
	}
	if err != nil {
		t.Fatalf("%v: %v\nstderr:\n%s", cmd.Args[1:], err, stderr.String())
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

// checkProduce checks a script's produce step: three sends of 20 records
// to each of topic's 3 partitions, acknowledged at the expected offsets,
// then consumed by the script in group topic, each record once and as
// written; franz-go reads them too, in batches compressed as attr says, and
// the group committed the end of every partition.
func checkProduce(t *testing.T, c *siltCluster, lines []map[string]json.RawMessage, topic string, attr uint8) {
	t.Helper()
	const partitions, perPartition = 3, 60

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
			t.Errorf("the script consumed partition %d offset %d twice", r.P, r.O)
		}
		seen[at] = true
		if r.P < 0 || r.P >= partitions || r.O < 0 || r.O >= perPartition ||
			r.K != string(compatKey(r.P, int(r.O))) || r.V != string(compatValue(r.P, int(r.O))) {
			t.Errorf("the script consumed partition %d offset %d as key %q value %q", r.P, r.O, r.K, r.V)
		}
	}
	if len(seen) != partitions*perPartition {
		t.Fatalf("the script consumed %d distinct records, want %d", len(seen), partitions*perPartition)
	}

	// franz-go reads the same records, in batches the script compressed.
	ends := map[int32]int64{}
	for p := range int32(partitions) {
		ends[p] = perPartition
	}
	recs := readRecords(t, c.addrs[1], topic, kgo.ReadUncommitted(), ends)
	if len(recs) != partitions*perPartition {
		t.Fatalf("franz-go read %d records, want %d", len(recs), partitions*perPartition)
	}
	// A client may send a batch uncompressed when compressing would not
	// make it smaller (librdkafka does, for a batch of a few records); every
	// batch is in the codec or uncompressed, and some are in the codec.
	compressed := 0
	for _, r := range recs {
		i := int(r.Offset)
		if !bytes.Equal(r.Key, compatKey(r.Partition, i)) || !bytes.Equal(r.Value, compatValue(r.Partition, i)) {
			t.Fatalf("franz-go read partition %d offset %d as key %q value %q", r.Partition, r.Offset, r.Key, r.Value)
		}
		switch got := r.Attrs.CompressionType(); got {
		case attr:
			compressed++
		case 0:
		default:
			t.Fatalf("partition %d offset %d: batch compression %d, want %d (or none)", r.Partition, r.Offset, got, attr)
		}
	}
	if attr != 0 && compressed == 0 {
		t.Fatalf("no batch was compressed with codec %d", attr)
	}
	if got := committedOffsets(t, c.addrs[2], topic, topic); !maps.Equal(got, ends) {
		t.Fatalf("group %s committed %v, want %v", topic, got, ends)
	}
}

// checkGroup checks a script's group step: 480 records produced in three
// phases to topic's 6 partitions, member A alone, A and B, A alone again;
// every record consumed once, by one member; B got a share of the
// partitions and A all of them after B left; the group committed the end
// of every partition.
func checkGroup(t *testing.T, c *siltCluster, lines []map[string]json.RawMessage, topic string) {
	t.Helper()
	const partitions = 6

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

// checkAdmin checks that each field of want is in a line of the admin
// step's output with the JSON value want gives.
func checkAdmin(t *testing.T, lines []map[string]json.RawMessage, want map[string]string) {
	t.Helper()
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
	check := func(name, exp string) {
		t.Helper()
		var got, w any
		if err := json.Unmarshal(field(name), &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(exp), &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s: got %s, want %s", name, field(name), exp)
		}
	}
	if string(field("cluster_id")) == `""` {
		t.Errorf("describe cluster: empty cluster id")
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		check(name, want[name])
	}
}

// checkTxn checks a script's txn step: transactions "committed" (20
// records), "aborted" (20), "offsets" (10, with the group's offset of
// input's partition 0 at 10), "aborted-offsets" (10, offset 99) and "end"
// (one per partition) on topic; the script's read_committed consumer and
// franz-go's read every committed record once and no aborted one, and the
// group's offset is 10.
func checkTxn(t *testing.T, c *siltCluster, lines []map[string]json.RawMessage, topic, input, group string) {
	t.Helper()

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
	check("the script's read_committed consumer", values)

	type groupOffsets struct {
		Offsets [][2]int64 `json:"group_offsets"`
	}
	if g := oneLineWith[groupOffsets](t, lines, "group_offsets"); !slices.Equal(g.Offsets, [][2]int64{{0, 10}}) {
		t.Fatalf("the script's offsets after sending them in a transaction: %v, want [[0 10]]", g.Offsets)
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
	rc, _ := readToEnd(t, c.addrs[2], "txn-check", topic, kgo.ReadCommitted(), ends)
	check("franz-go read_committed", rc)
	ru, _ := readToEnd(t, c.addrs[2], "txn-check", topic, kgo.ReadUncommitted(), ends)
	if len(ru) != len(committed)+len(aborted) {
		t.Fatalf("franz-go read_uncommitted read %d records, want %d committed + %d aborted", len(ru), len(committed), len(aborted))
	}
}
