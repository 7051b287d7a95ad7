package group

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/sqlite"
)

// decodeOffsetRecords parses batches as a Kafka client would and returns
// each record's offset, key and value.
func decodeOffsetRecords(t *testing.T, b []byte) (offsets []int64, keys []kmsg.OffsetCommitKey, vals []kmsg.OffsetCommitValue) {
	t.Helper()
	for len(b) > 0 {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatal(err)
		}
		b = b[12+int(rb.Length):]
		recs := rb.Records
		for range rb.NumRecords {
			var r kmsg.Record
			if err := r.ReadFrom(recs); err != nil {
				t.Fatal(err)
			}
			n := int(r.Length) + varintSize(int64(r.Length))
			recs = recs[n:]
			var k kmsg.OffsetCommitKey
			var v kmsg.OffsetCommitValue
			if err := k.ReadFrom(r.Key); err != nil {
				t.Fatal(err)
			}
			if err := v.ReadFrom(r.Value); err != nil {
				t.Fatal(err)
			}
			offsets = append(offsets, rb.FirstOffset+int64(r.OffsetDelta))
			keys, vals = append(keys, k), append(vals, v)
		}
	}
	return offsets, keys, vals
}

func varintSize(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for ; u >= 0x80; u >>= 7 {
		n++
	}
	return n
}

// Committed offsets read back as Kafka's offset commit records (key v1,
// value v3) at their sequence numbers, paged, bounded by bytes, and only
// from the group's partition.
func TestOffsetLogRead(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	const group = "my-group" // partition 12, as Kafka places it
	part := metastore.OffsetsPartition(group)
	var offs []metastore.CommittedOffset
	for i := range offsetLogPage + 10 {
		offs = append(offs, metastore.CommittedOffset{Topic: "t", Partition: int32(i), Offset: int64(100 + i), LeaderEpoch: 4, Metadata: "md"})
	}
	if err := s.CommitOffsets(ctx, group, offs); err != nil {
		t.Fatal(err)
	}
	// Rewrite partition 0: its record moves to the end, leaving a gap at 0.
	if err := s.CommitOffsets(ctx, group, []metastore.CommittedOffset{{Topic: "t", Partition: 0, Offset: 7, LeaderEpoch: -1}}); err != nil {
		t.Fatal(err)
	}
	l := NewOffsetLog(s)
	end, err := l.End(ctx, part)
	if err != nil || end != int64(len(offs))+1 {
		t.Fatalf("End = %d, %v; want %d", end, err, len(offs)+1)
	}
	b, err := l.Read(ctx, part, 0, end, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	offsets, keys, vals := decodeOffsetRecords(t, b)
	if len(offsets) != len(offs) {
		t.Fatalf("read %d records, want %d", len(offsets), len(offs))
	}
	for i := range offsets {
		k, v := keys[i], vals[i]
		if k.Version != 1 || k.Group != group || k.Topic != "t" || v.Version != 3 || v.CommitTimestamp <= 0 {
			t.Fatalf("record %d: key %+v value %+v", i, k, v)
		}
		if i == len(offsets)-1 {
			if offsets[i] != end-1 || k.Partition != 0 || v.Offset != 7 || v.LeaderEpoch != -1 {
				t.Fatalf("last record at %d: key %+v value %+v", offsets[i], k, v)
			}
			continue
		}
		if offsets[i] != int64(i+1) || k.Partition != int32(i+1) || v.Offset != int64(101+i) || v.LeaderEpoch != 4 || v.Metadata != "md" {
			t.Fatalf("record %d at %d: key %+v value %+v", i, offsets[i], k, v)
		}
	}

	// A budget bounds what is read: one record at least, and otherwise
	// batches within it.
	b, err = l.Read(ctx, part, 0, end, 1)
	if err != nil {
		t.Fatal(err)
	}
	if offsets, _, _ := decodeOffsetRecords(t, b); len(offsets) != 1 || offsets[0] != 1 {
		t.Fatalf("budget 1: records %v", offsets)
	}
	b, err = l.Read(ctx, part, 0, end, 8<<10)
	if err != nil {
		t.Fatal(err)
	}
	if offsets, _, _ := decodeOffsetRecords(t, b); len(b) > 8<<10 || len(offsets) < 10 || len(offsets) >= offsetLogPage || offsets[0] != 1 {
		t.Fatalf("budget 8 KiB: %d bytes, %d records", len(b), len(offsets))
	}
	// Nothing at or after the end; nothing in another partition.
	if b, err := l.Read(ctx, part, end, end, 1<<20); err != nil || b != nil {
		t.Fatalf("read at the end = %d bytes, %v", len(b), err)
	}
	if e, err := l.End(ctx, (part+1)%metastore.OffsetsTopicPartitions); err != nil || e != 0 {
		t.Fatalf("another partition ends at %d, %v", e, err)
	}
}

// A long poll watching a group's partition is woken by Committed for that
// group, and not by a group elsewhere.
func TestOffsetLogWakes(t *testing.T) {
	l := NewOffsetLog(nil)
	ch := make(chan struct{}, 1)
	l.Watch(metastore.OffsetsPartition("my-group"), ch)
	l.Committed("hello") // partition 22
	select {
	case <-ch:
		t.Fatal("woken by another partition's commit")
	default:
	}
	l.Committed("my-group")
	select {
	case <-ch:
	default:
		t.Fatal("not woken by the group's commit")
	}
	// A store watch that restarts may have missed commits: every long
	// poll reads again.
	l.CommittedAll()
	select {
	case <-ch:
	default:
		t.Fatal("not woken by CommittedAll")
	}
	l.Unwatch(metastore.OffsetsPartition("my-group"), ch)
	l.Committed("my-group")
	l.CommittedAll()
	select {
	case <-ch:
		t.Fatal("woken after Unwatch")
	default:
	}
}

// A saved group reads back as Kafka's group metadata record (key v2,
// value v3), members with the chosen protocol's subscription and their
// assignments, in sequence order among the offsets.
func TestOffsetLogGroupMetadata(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	const group = "my-group"
	err = s.SaveGroup(ctx, metastore.Group{ID: group, Generation: 3, ProtocolType: "consumer", Protocol: "range", Leader: "m1", State: "Stable",
		Members: []metastore.GroupMember{
			{ID: "m1", ClientID: "c1", ClientHost: "/10.0.0.1", SessionTimeoutMs: 45000, RebalanceTimeoutMs: 60000,
				Protocols:  []metastore.GroupProtocol{{Name: "cooperative-sticky", Metadata: []byte("no")}, {Name: "range", Metadata: []byte("sub1")}},
				Assignment: []byte("as1")},
			{ID: "m2", InstanceID: "static-2", ClientID: "c2", ClientHost: "/10.0.0.2", SessionTimeoutMs: 10000, RebalanceTimeoutMs: 20000,
				Protocols: []metastore.GroupProtocol{{Name: "range", Metadata: []byte("sub2")}}},
		}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOffsets(ctx, group, []metastore.CommittedOffset{{Topic: "t", Partition: 0, Offset: 9, LeaderEpoch: -1}}); err != nil {
		t.Fatal(err)
	}
	l := NewOffsetLog(s)
	part := metastore.OffsetsPartition(group)
	end, err := l.End(ctx, part)
	if err != nil || end != 2 {
		t.Fatalf("End = %d, %v; want 2", end, err)
	}
	b, err := l.Read(ctx, part, 0, end, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil || rb.NumRecords != 2 || rb.FirstOffset != 0 {
		t.Fatalf("batch %+v: %v", rb, err)
	}
	var r kmsg.Record
	if err := r.ReadFrom(rb.Records); err != nil {
		t.Fatal(err)
	}
	var k kmsg.GroupMetadataKey
	v := kmsg.NewGroupMetadataValue()
	if err := k.ReadFrom(r.Key); err != nil || k.Version != 2 || k.Group != group {
		t.Fatalf("key %+v: %v", k, err)
	}
	if err := v.ReadFrom(r.Value); err != nil {
		t.Fatal(err)
	}
	if v.Version != 3 || v.ProtocolType != "consumer" || v.Generation != 3 || v.Protocol == nil || *v.Protocol != "range" ||
		v.Leader == nil || *v.Leader != "m1" || v.CurrentStateTimestamp <= 0 || len(v.Members) != 2 {
		t.Fatalf("value %+v", v)
	}
	m1, m2 := v.Members[0], v.Members[1]
	if m1.MemberID != "m1" || m1.InstanceID != nil || m1.ClientID != "c1" || m1.ClientHost != "/10.0.0.1" || m1.SessionTimeoutMillis != 45000 ||
		m1.RebalanceTimeoutMillis != 60000 || string(m1.Subscription) != "sub1" || string(m1.Assignment) != "as1" {
		t.Fatalf("member 1: %+v", m1)
	}
	if m2.MemberID != "m2" || m2.InstanceID == nil || *m2.InstanceID != "static-2" || string(m2.Subscription) != "sub2" || len(m2.Assignment) != 0 {
		t.Fatalf("member 2: %+v", m2)
	}
}
