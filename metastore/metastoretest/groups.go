package metastoretest

import (
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/siltstream/silt/metastore"
)

// testGroups covers metastore.GroupStore: saving and loading, the
// generation compare-and-set (two concurrent saves from one generation:
// exactly one wins), fenced offset commits, listing and deleting.
func testGroups(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	if _, ok, err := s.Group(ctx, "g"); ok || err != nil {
		t.Fatalf("Group of an unknown group: ok=%v err=%v", ok, err)
	}
	member := func(id, instance string) metastore.GroupMember {
		return metastore.GroupMember{
			ID: id, InstanceID: instance, ClientID: "c-" + id, ClientHost: "/127.0.0.1",
			SessionTimeoutMs: 45000, RebalanceTimeoutMs: 60000,
			Protocols:  []metastore.GroupProtocol{{Name: "range", Metadata: []byte{0, 1, 2}}, {Name: "sticky", Metadata: []byte{}}},
			Assignment: []byte("assigned-" + id),
		}
	}
	g1 := metastore.Group{ID: "g", Generation: 1, ProtocolType: "consumer", Protocol: "range", Leader: "m1", State: "Stable",
		Members: []metastore.GroupMember{member("m1", ""), member("m2", "static-2")}, Type: metastore.GroupTypeClassic}
	if err := s.SaveGroup(ctx, g1, 1); !errors.Is(err, metastore.ErrStaleGeneration) {
		t.Fatalf("SaveGroup of a new group from generation 1: %v, want ErrStaleGeneration", err)
	}
	if err := s.SaveGroup(ctx, g1, 0); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Group(ctx, "g")
	if err != nil || !ok || !reflect.DeepEqual(got, g1) {
		t.Fatalf("Group = %+v, %v, %v; want %+v", got, ok, err, g1)
	}
	if err := s.SaveGroup(ctx, g1, 0); !errors.Is(err, metastore.ErrStaleGeneration) {
		t.Fatalf("second create: %v, want ErrStaleGeneration", err)
	}
	if err := s.SaveGroup(ctx, metastore.Group{ID: "g", Generation: 0}, 1); !errors.Is(err, metastore.ErrStaleGeneration) {
		t.Fatalf("save moving the generation back: %v, want ErrStaleGeneration", err)
	}

	// Fencing: two coordinators both at generation 1 try to move to 2.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := g1
			g.Generation = 2
			g.Leader = string(rune('a' + i))
			g.Members = []metastore.GroupMember{member(g.Leader, "")}
			errs[i] = s.SaveGroup(ctx, g, 1)
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, metastore.ErrStaleGeneration):
			t.Fatalf("concurrent SaveGroup: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d concurrent saves from generation 1 won, want exactly 1", wins, len(errs))
	}
	got, _, err = s.Group(ctx, "g")
	if err != nil || got.Generation != 2 || len(got.Members) != 1 || got.Members[0].ID != got.Leader {
		t.Fatalf("after the race: %+v, %v", got, err)
	}
	winner := got.Leader

	// Fenced commits.
	offs := []metastore.CommittedOffset{{Topic: "t", Partition: 0, Offset: 10, LeaderEpoch: 1, Metadata: "x"}}
	if err := s.CommitGroupOffsets(ctx, "g", 0, 1, "m1", offs); !errors.Is(err, metastore.ErrStaleGeneration) {
		t.Fatalf("commit from a stale generation: %v, want ErrStaleGeneration", err)
	}
	if err := s.CommitGroupOffsets(ctx, "g", 0, 3, winner, offs); !errors.Is(err, metastore.ErrStaleGeneration) {
		t.Fatalf("commit from a future generation: %v, want ErrStaleGeneration", err)
	}
	if err := s.CommitGroupOffsets(ctx, "g", 0, 2, "m1", offs); !errors.Is(err, metastore.ErrUnknownMember) {
		t.Fatalf("commit by a member the generation does not list: %v, want ErrUnknownMember", err)
	}
	if err := s.CommitGroupOffsets(ctx, "g", 0, -1, "", offs); !errors.Is(err, metastore.ErrGroupNotEmpty) {
		t.Fatalf("simple commit to a group with members: %v, want ErrGroupNotEmpty", err)
	}
	// With no offsets, a commit only checks the committer.
	if err := s.CommitGroupOffsets(ctx, "g", 0, 1, "m1", nil); !errors.Is(err, metastore.ErrStaleGeneration) {
		t.Fatalf("check of a stale generation: %v, want ErrStaleGeneration", err)
	}
	if err := s.CommitGroupOffsets(ctx, "g", 0, 2, "m1", nil); !errors.Is(err, metastore.ErrUnknownMember) {
		t.Fatalf("check of a member the generation does not list: %v, want ErrUnknownMember", err)
	}
	if err := s.CommitGroupOffsets(ctx, "g", 0, 2, winner, nil); err != nil {
		t.Fatalf("check of the current member: %v", err)
	}
	if fo, _ := s.FetchOffsets(ctx, "g"); len(fo) != 0 {
		t.Fatalf("rejected commits wrote offsets: %+v", fo)
	}
	if err := s.CommitGroupOffsets(ctx, "g", 0, 2, winner, offs); err != nil {
		t.Fatal(err)
	}
	if fo, err := s.FetchOffsets(ctx, "g"); err != nil || !reflect.DeepEqual(fo, offs) {
		t.Fatalf("FetchOffsets = %+v, %v; want %+v", fo, err, offs)
	}
	if err := s.DeleteGroup(ctx, "g"); !errors.Is(err, metastore.ErrGroupNotEmpty) {
		t.Fatalf("DeleteGroup of a group with members: %v, want ErrGroupNotEmpty", err)
	}

	// The group empties; simple commits are now allowed.
	if err := s.SaveGroup(ctx, metastore.Group{ID: "g", Generation: 3, ProtocolType: "consumer", State: "Empty"}, 2); err != nil {
		t.Fatal(err)
	}
	more := []metastore.CommittedOffset{{Topic: "t", Partition: 1, Offset: 5, LeaderEpoch: -1}, {Topic: "u", Partition: 0, Offset: 7, LeaderEpoch: -1}}
	if err := s.CommitGroupOffsets(ctx, "g", 0, -1, "", more); err != nil {
		t.Fatal(err)
	}
	// A group that only has offsets exists too.
	if err := s.CommitGroupOffsets(ctx, "simple", 0, -1, "", more[:1]); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitGroupOffsets(ctx, "never-saved", 0, 0, "m", more[:1]); !errors.Is(err, metastore.ErrStaleGeneration) {
		t.Fatalf("generation commit to an unsaved group: %v, want ErrStaleGeneration", err)
	}
	if err := s.SaveGroup(ctx, metastore.Group{ID: "a", Generation: 1, ProtocolType: "connect", Protocol: "p", Leader: "x", State: "Stable",
		Members: []metastore.GroupMember{member("x", "")}}, 0); err != nil {
		t.Fatal(err)
	}
	// A consumer group (KIP-848) keeps its type and its opaque state.
	cg := metastore.Group{ID: "c", Generation: 3, ProtocolType: "consumer", State: "Stable",
		Members: []metastore.GroupMember{{ID: "cm", Protocols: []metastore.GroupProtocol{}}}, Type: metastore.GroupTypeConsumer,
		ConsumerState: []byte(`{"epoch":3}`)}
	if err := s.SaveGroup(ctx, cg, 0); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := s.Group(ctx, "c"); err != nil || !ok || !reflect.DeepEqual(got, cg) {
		t.Fatalf("consumer Group = %+v, %v, %v; want %+v", got, ok, err, cg)
	}
	if err := s.CommitGroupOffsets(ctx, "c", 0, 3, "cm", more[:1]); err != nil {
		t.Fatalf("member commit to a consumer group: %v", err)
	}
	gs, err := s.Groups(ctx)
	want := []metastore.GroupSummary{
		{ID: "a", ProtocolType: "connect", State: "Stable", Type: metastore.GroupTypeClassic},
		{ID: "c", ProtocolType: "consumer", State: "Stable", Type: metastore.GroupTypeConsumer},
		{ID: "g", ProtocolType: "consumer", State: "Empty", Type: metastore.GroupTypeClassic},
		{ID: "simple", ProtocolType: "", State: "Empty", Type: metastore.GroupTypeClassic},
	}
	if err != nil || !reflect.DeepEqual(gs, want) {
		t.Fatalf("Groups = %+v, %v; want %+v", gs, err, want)
	}

	if err := s.DeleteGroupOffsets(ctx, "g", []metastore.GroupPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 9}}); err != nil {
		t.Fatal(err)
	}
	if fo, err := s.FetchOffsets(ctx, "g"); err != nil || !reflect.DeepEqual(fo, more) {
		t.Fatalf("after DeleteGroupOffsets: %+v, %v; want %+v", fo, err, more)
	}

	if err := s.DeleteGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup(ctx, "simple"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"g", "simple", "nope"} {
		if err := s.DeleteGroup(ctx, id); !errors.Is(err, metastore.ErrGroupNotFound) {
			t.Fatalf("DeleteGroup(%s) again: %v, want ErrGroupNotFound", id, err)
		}
	}
	if _, ok, _ := s.Group(ctx, "g"); ok {
		t.Fatal("deleted group still loads")
	}
	if fo, _ := s.FetchOffsets(ctx, "g"); len(fo) != 0 {
		t.Fatalf("deleted group kept offsets: %+v", fo)
	}
	// Deleted groups start over from generation 0.
	if err := s.SaveGroup(ctx, metastore.Group{ID: "g", Generation: 1, State: "Empty"}, 0); err != nil {
		t.Fatal(err)
	}
	gs, _ = s.Groups(ctx)
	if len(gs) != 3 { // a, c and g
		t.Fatalf("Groups after deletes = %+v", gs)
	}
}

func testConsumerOffsets(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	got, err := s.FetchOffsets(ctx, "g")
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("FetchOffsets of an unknown group = %#v, %v; want an empty slice", got, err)
	}
	if err := s.CommitOffsets(ctx, "g", []metastore.CommittedOffset{
		{Topic: "b", Partition: 1, Offset: 10, LeaderEpoch: 1, Metadata: "m1"},
		{Topic: "a", Partition: 2, Offset: 20, LeaderEpoch: -1},
		{Topic: "b", Partition: 0, Offset: 5, LeaderEpoch: 1, Metadata: "m0"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOffsets(ctx, "other", []metastore.CommittedOffset{{Topic: "a", Partition: 2, Offset: 99}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOffsets(ctx, "g", []metastore.CommittedOffset{
		{Topic: "b", Partition: 1, Offset: 11, LeaderEpoch: 2, Metadata: "new"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOffsets(ctx, "g", nil); err != nil {
		t.Fatal(err)
	}
	got, err = s.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	want := []metastore.CommittedOffset{
		{Topic: "a", Partition: 2, Offset: 20, LeaderEpoch: -1},
		{Topic: "b", Partition: 0, Offset: 5, LeaderEpoch: 1, Metadata: "m0"},
		{Topic: "b", Partition: 1, Offset: 11, LeaderEpoch: 2, Metadata: "new"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FetchOffsets = %+v, want %+v", got, want)
	}
}

// testGroupCoordinatorFence: a coordinator that loaded a group before
// another claimed it can neither commit offsets nor save the group, and
// its refused writes change nothing; the current claim's writes pass.
func testGroupCoordinatorFence(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	old, err := s.ClaimGroup(ctx, "fenced")
	if err != nil {
		t.Fatal(err)
	}
	g := metastore.Group{ID: "fenced", Epoch: old, Generation: 1, ProtocolType: "consumer", Protocol: "range", Leader: "m1", State: "Stable",
		Members: []metastore.GroupMember{{ID: "m1", ClientID: "c"}}}
	if err := s.SaveGroup(ctx, g, 0); err != nil {
		t.Fatalf("save under the first claim: %v", err)
	}
	offs := func(at int64) []metastore.CommittedOffset {
		return []metastore.CommittedOffset{{Topic: "t", Partition: 0, Offset: at, LeaderEpoch: -1}}
	}
	if err := s.CommitGroupOffsets(ctx, "fenced", old, 1, "m1", offs(100)); err != nil {
		t.Fatalf("commit under the first claim: %v", err)
	}

	cur, err := s.ClaimGroup(ctx, "fenced")
	if err != nil || cur <= old {
		t.Fatalf("second claim: epoch %d after %d, %v", cur, old, err)
	}
	if err := s.CommitGroupOffsets(ctx, "fenced", cur, 1, "m1", offs(200)); err != nil {
		t.Fatalf("commit under the current claim: %v", err)
	}
	// The deposed coordinator wakes up with an older commit in hand.
	if err := s.CommitGroupOffsets(ctx, "fenced", old, 1, "m1", offs(150)); !errors.Is(err, metastore.ErrCoordinatorMoved) {
		t.Fatalf("commit under a superseded claim: %v, want ErrCoordinatorMoved", err)
	}
	if err := s.CommitGroupOffsets(ctx, "fenced", old, 1, "m1", nil); !errors.Is(err, metastore.ErrCoordinatorMoved) {
		t.Fatalf("check under a superseded claim: %v, want ErrCoordinatorMoved", err)
	}
	stale := g
	stale.Generation, stale.State = 2, "CompletingRebalance"
	if err := s.SaveGroup(ctx, stale, 1); !errors.Is(err, metastore.ErrCoordinatorMoved) {
		t.Fatalf("save under a superseded claim: %v, want ErrCoordinatorMoved", err)
	}
	got, err := s.FetchOffsets(ctx, "fenced")
	if err != nil || len(got) != 1 || got[0].Offset != 200 {
		t.Fatalf("offsets after a refused commit: %+v, %v; want 200", got, err)
	}
	if stored, _, err := s.Group(ctx, "fenced"); err != nil || stored.Generation != 1 {
		t.Fatalf("group after a refused save: %+v, %v; want generation 1", stored, err)
	}
	g.Epoch, g.Generation = cur, 2
	if err := s.SaveGroup(ctx, g, 1); err != nil {
		t.Fatalf("save under the current claim: %v", err)
	}
}
