package metastoretest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/siltstream/silt/metastore"
)

// groupsInOnePartition returns n group ids that share a partition of
// __consumer_offsets, and one id in another partition.
func groupsInOnePartition(n int) (same []string, other string) {
	part := metastore.OffsetsPartition("log-0")
	for i := 0; len(same) < n || other == ""; i++ {
		id := fmt.Sprintf("log-%d", i)
		switch {
		case metastore.OffsetsPartition(id) == part && len(same) < n:
			same = append(same, id)
		case metastore.OffsetsPartition(id) != part && other == "":
			other = id
		}
	}
	return same, other
}

// offsetLog reads a whole partition of the log.
func offsetLog(t *testing.T, s metastore.Store, part int32) (end int64, rows []metastore.OffsetLogEntry) {
	t.Helper()
	ctx := ctxFor(t)
	end, err := s.OffsetLogEnd(ctx, part)
	if err != nil {
		t.Fatalf("OffsetLogEnd(%d): %v", part, err)
	}
	rows, err = s.OffsetLog(ctx, part, 0, end, 1000, 1<<20)
	if err != nil {
		t.Fatalf("OffsetLog(%d): %v", part, err)
	}
	return end, rows
}

// logRow is an entry in short: an offset, or (Topic "group") a group's
// metadata with its generation as Offset, its state as Metadata and its
// member count as Partition.
type logRow struct {
	Seq       int64
	Group     string
	Topic     string
	Partition int32
	Offset    int64
	Epoch     int32
	Metadata  string
}

func logRows(t *testing.T, es []metastore.OffsetLogEntry) []logRow {
	t.Helper()
	out := []logRow{}
	for _, e := range es {
		if e.CommitTimeMs <= 0 {
			t.Errorf("row %d of group %s has commit time %d", e.Seq, e.Group, e.CommitTimeMs)
		}
		if g := e.GroupMetadata; g != nil {
			out = append(out, logRow{e.Seq, e.Group, "group", int32(len(g.Members)), int64(g.Generation), 0, g.State})
			continue
		}
		out = append(out, logRow{e.Seq, e.Group, e.Topic, e.Partition, e.Offset, e.LeaderEpoch, e.Metadata})
	}
	return out
}

// testOffsetLog: every write of a committed offset, fenced or not, and
// every group save takes the next sequence number of its group's partition
// of __consumer_offsets; the log of a partition is its groups' rows in
// sequence order, rewritten rows move to the end, deleted ones vanish, and
// the end never goes back.
func testOffsetLog(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	same, other := groupsInOnePartition(2)
	g1, g2 := same[0], same[1]
	part := metastore.OffsetsPartition(g1)
	for p := int32(0); p < metastore.OffsetsTopicPartitions; p++ {
		if end, rows := offsetLog(t, s, p); end != 0 || len(rows) != 0 {
			t.Fatalf("new store: partition %d ends at %d with %d rows", p, end, len(rows))
		}
	}

	commit := func(group string, offs ...metastore.CommittedOffset) {
		t.Helper()
		if err := s.CommitOffsets(ctx, group, offs); err != nil {
			t.Fatalf("CommitOffsets(%s): %v", group, err)
		}
	}
	commit(g1, metastore.CommittedOffset{Topic: "a", Partition: 0, Offset: 10, LeaderEpoch: 1, Metadata: "m"},
		metastore.CommittedOffset{Topic: "a", Partition: 1, Offset: 20, LeaderEpoch: -1})
	commit(other, metastore.CommittedOffset{Topic: "a", Partition: 0, Offset: 99})
	// A fenced commit by a member of a saved group is numbered too.
	if err := s.SaveGroup(ctx, metastore.Group{ID: g2, Generation: 1, ProtocolType: "consumer", Protocol: "range",
		Leader: "m1", State: "Stable", Members: []metastore.GroupMember{{ID: "m1"}}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitGroupOffsets(ctx, g2, 0, 1, "m1", []metastore.CommittedOffset{{Topic: "b", Partition: 0, Offset: 5, LeaderEpoch: 3}}); err != nil {
		t.Fatal(err)
	}
	// Rewriting a row moves it to the end of the log.
	commit(g1, metastore.CommittedOffset{Topic: "a", Partition: 0, Offset: 11, LeaderEpoch: 2, Metadata: "n"})

	end, rows := offsetLog(t, s, part)
	want := []logRow{
		{1, g1, "a", 1, 20, -1, ""},
		{2, g2, "group", 1, 1, 0, "Stable"},
		{3, g2, "b", 0, 5, 3, ""},
		{4, g1, "a", 0, 11, 2, "n"},
	}
	if end != 5 || !reflect.DeepEqual(logRows(t, rows), want) {
		t.Fatalf("partition %d: end %d, rows %+v; want end 5, rows %+v", part, end, logRows(t, rows), want)
	}
	if g := rows[1].GroupMetadata; g.ID != g2 || g.ProtocolType != "consumer" || g.Protocol != "range" || g.Leader != "m1" || g.Members[0].ID != "m1" {
		t.Fatalf("group metadata: %+v", g)
	}
	// A save refused by the generation check takes no number; the next
	// save moves the group's record to the end.
	if err := s.SaveGroup(ctx, metastore.Group{ID: g2, Generation: 3, State: "Empty"}, 2); !errors.Is(err, metastore.ErrStaleGeneration) {
		t.Fatalf("SaveGroup from a stale generation: %v", err)
	}
	if err := s.SaveGroup(ctx, metastore.Group{ID: g2, Generation: 2, ProtocolType: "consumer", State: "Empty"}, 1); err != nil {
		t.Fatal(err)
	}
	end, rows = offsetLog(t, s, part)
	want = append(slices.Delete(want, 1, 2), logRow{5, g2, "group", 0, 2, 0, "Empty"})
	if end < 6 || !reflect.DeepEqual(logRows(t, rows), want) {
		t.Fatalf("after a group save: end %d, rows %+v; want rows %+v", end, logRows(t, rows), want)
	}
	if end, rows := offsetLog(t, s, metastore.OffsetsPartition(other)); end != 1 || len(rows) != 1 || rows[0].Group != other {
		t.Fatalf("the other group's partition: end %d, rows %+v", end, rows)
	}

	// from, end and limit bound what is returned.
	got, err := s.OffsetLog(ctx, part, 2, 6, 1, 1<<20)
	if err != nil || len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("OffsetLog(from 2, limit 1) = %+v, %v", got, err)
	}
	got, err = s.OffsetLog(ctx, part, 0, 4, 10, 1<<20)
	if err != nil || len(got) != 2 || got[1].Seq != 3 {
		t.Fatalf("OffsetLog(end 4) = %+v, %v", got, err)
	}

	// maxBytes bounds the rows by their sizes (OffsetLogEntrySize): a row
	// is returned while those before it add up to less, the first always.
	size := func(e metastore.OffsetLogEntry) int64 {
		return metastore.OffsetLogEntrySize(e.Group, e.Topic, e.Metadata)
	}
	all, err := s.OffsetLog(ctx, part, 0, 5, 10, 1<<20) // three offsets
	if err != nil || len(all) != 3 {
		t.Fatalf("OffsetLog = %+v, %v", all, err)
	}
	for _, c := range []struct {
		maxBytes int64
		want     int
	}{
		{1, 1},
		{size(all[0]), 1},
		{size(all[0]) + 1, 2},
		{size(all[0]) + size(all[1]), 2},
		{size(all[0]) + size(all[1]) + 1, 3},
	} {
		got, err := s.OffsetLog(ctx, part, 0, 5, 10, c.maxBytes)
		if err != nil || len(got) != c.want {
			t.Fatalf("OffsetLog(maxBytes %d) = %d rows, %v; want %d", c.maxBytes, len(got), err, c.want)
		}
	}
	// Sizes count bytes, not characters: a budget of the first row's size
	// in bytes leaves out the second.
	commit(g2, metastore.CommittedOffset{Topic: "ü", Partition: 0, Offset: 1, Metadata: "üü"})
	commit(g2, metastore.CommittedOffset{Topic: "z", Partition: 0, Offset: 1})
	end, rows = offsetLog(t, s, part)
	mb := rows[len(rows)-2]
	if size(mb) != metastore.OffsetLogEntrySize(g2, "", "")+6 {
		t.Fatalf("size of %+v = %d", mb, size(mb))
	}
	for budget, want := range map[int64]int{size(mb): 1, size(mb) + 1: 2} {
		if got, err := s.OffsetLog(ctx, part, mb.Seq, end, 10, budget); err != nil || len(got) != want {
			t.Fatalf("from a row with multi-byte characters, budget %d: %d rows, %v; want %d", budget, len(got), err, want)
		}
	}
	if err := s.DeleteGroupOffsets(ctx, g2, []metastore.GroupPartition{{Topic: "ü", Partition: 0}, {Topic: "z", Partition: 0}}); err != nil {
		t.Fatal(err)
	}

	// Deleted offsets vanish; the end stays.
	before, _ := offsetLog(t, s, part)
	if err := s.DeleteGroupOffsets(ctx, g1, []metastore.GroupPartition{{Topic: "a", Partition: 1}}); err != nil {
		t.Fatal(err)
	}
	end, rows = offsetLog(t, s, part)
	if want := want[1:]; end != before || !reflect.DeepEqual(logRows(t, rows), want) {
		t.Fatalf("after DeleteGroupOffsets: end %d, rows %+v; want end %d, rows %+v", end, logRows(t, rows), before, want)
	}
	// A repeated partition in one commit keeps the last value.
	commit(g1, metastore.CommittedOffset{Topic: "c", Partition: 0, Offset: 1},
		metastore.CommittedOffset{Topic: "c", Partition: 0, Offset: 2})
	end, rows = offsetLog(t, s, part)
	if last := rows[len(rows)-1]; end <= before || last.Topic != "c" || last.Offset != 2 || last.Seq >= end || len(rows) != 4 {
		t.Fatalf("after a commit naming one partition twice: end %d, rows %+v", end, logRows(t, rows))
	}
	if err := s.DeleteGroup(ctx, other); err != nil {
		t.Fatal(err)
	}
	if end, rows := offsetLog(t, s, metastore.OffsetsPartition(other)); end != 1 || len(rows) != 0 {
		t.Fatalf("after DeleteGroup: end %d, rows %+v", end, rows)
	}
}

// testOffsetLogConcurrent: commits racing on groups of one partition each
// get their own sequence numbers, none lost.
func testOffsetLogConcurrent(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	groups, _ := groupsInOnePartition(4)
	part := metastore.OffsetsPartition(groups[0])
	const commits = 10
	var wg sync.WaitGroup
	errs := make(chan error, len(groups)*commits)
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range commits {
				errs <- s.CommitOffsets(ctx, g, []metastore.CommittedOffset{{Topic: "t", Partition: int32(i), Offset: int64(i)}})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	end, rows := offsetLog(t, s, part)
	if end != int64(len(groups)*commits) || len(rows) != len(groups)*commits {
		t.Fatalf("end %d with %d rows, want %d of each", end, len(rows), len(groups)*commits)
	}
	for i, r := range rows {
		if r.Seq != int64(i) {
			t.Fatalf("row %d has sequence %d", i, r.Seq)
		}
	}
}
