package group

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests move a group between two coordinators over one store, as a
// membership change moves it between agents (issue 11, item 9). A member
// that did nothing wrong may be told NOT_COORDINATOR (it finds the next
// coordinator) or REBALANCE_IN_PROGRESS (it rejoins), never
// UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION.

// placed returns a coordinator over the fixture's store that coordinates
// while on is set.
func (f *fixture) placed(on *atomic.Bool) *Coordinator {
	return f.coordinator(func(cfg *Config) { cfg.IsCoordinator = func(string) bool { return on.Load() } })
}

// two returns coordinators a and b; a coordinates the group.
func (f *fixture) two() (a, b *Coordinator, onA, onB *atomic.Bool) {
	onA, onB = new(atomic.Bool), new(atomic.Bool)
	onA.Store(true)
	return f.placed(onA), f.placed(onB), onA, onB
}

// move hands the group from one coordinator to the other: placement
// changes and the old one's sweep unloads it.
func move(from *Coordinator, fromOn, toOn *atomic.Bool) {
	fromOn.Store(false)
	toOn.Store(true)
	from.sweep()
}

// on returns a copy of j talking to c.
func (j *joiner) on(c *Coordinator) *joiner {
	k := *j
	k.c = c
	return &k
}

// allowed fails t if code is an error a member that did nothing wrong
// must not see.
func allowed(t *testing.T, what string, code int16) {
	t.Helper()
	switch code {
	case 0, kerr.NotCoordinator.Code, kerr.RebalanceInProgress.Code:
	default:
		t.Fatalf("%s: %v; a member that did nothing wrong may only be told NOT_COORDINATOR or REBALANCE_IN_PROGRESS", what, kerr.ErrorForCode(code))
	}
}

// TestMoveBetweenJoinAndSync: the old coordinator completed a join phase
// (every member holds generation 2, a new member among them) and the
// group moves before the leader's SyncGroup. The new coordinator knows
// generation 2 and all three members: the leader's assignment completes
// the rebalance there.
func TestMoveBetweenJoinAndSync(t *testing.T) {
	f := newFixture(t)
	a, b, onA, onB := f.two()
	leader, follower := stableGroup(t, a)

	n := newJoiner(a)
	n.getID(t)
	jn := n.join(t)
	if code := leader.heartbeat(1); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat while a member joins: %v", kerr.ErrorForCode(code))
	}
	jl, jf := leader.join(t), follower.join(t)
	leader.joined(t, recv(t, jl))
	follower.joined(t, recv(t, jf))
	n.joined(t, recv(t, jn))
	if leader.generation != 2 || n.generation != 2 {
		t.Fatalf("after the join phase: generations %d, %d; want 2", leader.generation, n.generation)
	}

	move(a, onA, onB)
	l, fo, nb := leader.on(b), follower.on(b), n.on(b)
	sf, sn := fo.sync(t, nil), nb.sync(t, nil)
	sl := l.sync(t, map[string]string{l.id: "L", fo.id: "F", nb.id: "N"})
	for _, s := range []struct {
		j    *joiner
		ch   <-chan kmsg.Response
		want string
	}{{l, sl, "L"}, {fo, sf, "F"}, {nb, sn, "N"}} {
		resp := recv(t, s.ch).(*kmsg.SyncGroupResponse)
		allowed(t, "sync on the new coordinator", resp.ErrorCode)
		if resp.ErrorCode == 0 && string(resp.MemberAssignment) != s.want {
			t.Fatalf("member %s got assignment %q, want %q", s.j.id, resp.MemberAssignment, s.want)
		}
	}
	for _, j := range []*joiner{l, fo, nb} {
		allowed(t, "heartbeat on the new coordinator", j.heartbeat(2))
		if codes := j.commit(2, topic, 5, 0); codes[0] != 0 {
			allowed(t, "commit on the new coordinator", codes[0])
		}
	}
}

// TestMoveAfterMemberIDHandedOut: the old coordinator handed a new member
// its id (MEMBER_ID_REQUIRED) and the group moved before the member came
// back with it. The new coordinator takes the member in.
func TestMoveAfterMemberIDHandedOut(t *testing.T) {
	f := newFixture(t)
	a, b, onA, onB := f.two()
	leader, follower := stableGroup(t, a)
	n := newJoiner(a)
	n.getID(t)

	move(a, onA, onB)
	l, fo, nb := leader.on(b), follower.on(b), n.on(b)
	jn := nb.join(t)
	select {
	case r := <-jn:
		code := r.(*kmsg.JoinGroupResponse).ErrorCode
		allowed(t, "join with the member id the old coordinator gave", code)
		t.Fatalf("join answered %v before the others rejoined", kerr.ErrorForCode(code))
	default:
	}
	for _, j := range []*joiner{l, fo} {
		if code := j.heartbeat(1); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("heartbeat while a member joins: %v, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(code))
		}
	}
	jl, jf := l.join(t), fo.join(t)
	l.joined(t, recv(t, jl))
	fo.joined(t, recv(t, jf))
	nb.joined(t, recv(t, jn))
	if l.generation != 2 || len(l.members) != 3 {
		t.Fatalf("rebalance on the new coordinator: generation %d, leader saw %d members; want 2 and 3", l.generation, len(l.members))
	}
}

// TestMoveBackToStaleCoordinator: placement flaps A → B → A faster than
// A's sweep: A still holds generation 1 in memory while B moved the group
// to generation 2. A must not tell generation-2 members their generation
// is illegal: it finds its memory behind the store, unloads, and serves
// the group as stored.
func TestMoveBackToStaleCoordinator(t *testing.T) {
	f := newFixture(t)
	a, b, onA, onB := f.two()
	leader, follower := stableGroup(t, a)

	onA.Store(false)
	onB.Store(true) // A's sweep does not run
	l, fo := leader.on(b), follower.on(b)
	jl := l.join(t)
	jf := fo.join(t)
	l.joined(t, recv(t, jl))
	fo.joined(t, recv(t, jf))
	sf := fo.sync(t, nil)
	syncedAssignment(t, l, recv(t, l.sync(t, map[string]string{l.id: "L2", fo.id: "F2"})))
	syncedAssignment(t, fo, recv(t, sf))

	onB.Store(false)
	onA.Store(true)
	b.sweep()
	la, fa := l.on(a), fo.on(a)
	code := fa.heartbeat(2)
	allowed(t, "heartbeat on the stale coordinator", code)
	if code == kerr.NotCoordinator.Code {
		code = fa.heartbeat(2) // the client re-finds the coordinator: A again
	}
	if code != 0 {
		t.Fatalf("heartbeat after the retry: %v", kerr.ErrorForCode(code))
	}
	if codes := la.commit(2, topic, 9, 0); codes[0] != 0 {
		t.Fatalf("commit at generation 2: %v", kerr.ErrorForCode(codes[0]))
	}
	// A member really at an old generation is still told so.
	if code := fa.heartbeat(1); code != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat at generation 1: %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(code))
	}
}

// TestLoadRereadsPlacement: a coordinator whose view of the cluster is
// behind the store's does not take a group over on that view: it rereads
// placement before loading the group, and answers NOT_COORDINATOR if the
// group is placed elsewhere.
func TestLoadRereadsPlacement(t *testing.T) {
	f := newFixture(t)
	var view, store atomic.Bool // this coordinator coordinates the group
	view.Store(true)            // in its cached view
	refreshed := 0
	c := f.coordinator(func(cfg *Config) {
		cfg.IsCoordinator = func(string) bool { return view.Load() }
		cfg.RefreshPlacement = func(context.Context) error {
			refreshed++
			view.Store(store.Load())
			return nil
		}
	})
	j := newJoiner(c)
	resp, parked := c.JoinGroup(context.Background(), j.joinRequest(), Client{})
	if parked != nil || resp.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("join on a coordinator whose view is stale: %+v, want NOT_COORDINATOR", resp)
	}
	store.Store(true)
	view.Store(true)
	j.getID(t)
	if refreshed != 2 || c.Count() != 1 {
		t.Fatalf("placement reread %d times, %d groups loaded; want 2 and 1", refreshed, c.Count())
	}
	j.joined(t, recv(t, j.join(t))) // loaded: no reread
	if refreshed != 2 {
		t.Fatalf("placement reread %d times, want 2", refreshed)
	}
}

// TestDeposedCoordinatorCannotCommit: a coordinator that still holds a
// group (paused with an OffsetCommit in hand, or briefly disagreeing on
// placement) after another agent took the group over and the member
// committed a newer offset there cannot write its older offset: the store
// refuses it by the coordinator epoch and the member is told
// NOT_COORDINATOR. Found by the fault test as a committed offset moving
// backwards.
func TestDeposedCoordinatorCannotCommit(t *testing.T) {
	f := newFixture(t)
	a, b, onA, onB := f.two()
	leader, _ := stableGroup(t, a)
	if codes := leader.commit(1, topic, 5, 0); codes[0] != 0 {
		t.Fatalf("commit on the first coordinator: %v", kerr.ErrorForCode(codes[0]))
	}

	onA.Store(false)
	onB.Store(true) // the group moves to B; A's sweep does not run
	if codes := leader.on(b).commit(1, topic, 9, 0); codes[0] != 0 {
		t.Fatalf("commit on the new coordinator: %v", kerr.ErrorForCode(codes[0]))
	}

	onA.Store(true) // A wakes up still believing it coordinates the group
	if codes := leader.on(a).commit(1, topic, 7, 0); codes[0] != kerr.NotCoordinator.Code {
		t.Fatalf("commit of an older offset on the deposed coordinator: %v, want NOT_COORDINATOR", kerr.ErrorForCode(codes[0]))
	}
	committed, err := f.store.FetchOffsets(context.Background(), groupID)
	if err != nil || len(committed) != 1 || committed[0].Offset != 9 {
		t.Fatalf("stored offsets %+v, %v; want 9, the new coordinator's", committed, err)
	}
}
