package group

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// txnCommit sends a transactional offset commit as who and reports its
// error and whether the offsets were staged.
func txnCommit(c *Coordinator, who TxnCommitter) (err error, staged bool) {
	err = c.TxnOffsetCommit(context.Background(), groupID, who, func(context.Context) error {
		staged = true
		return nil
	})
	return err, staged
}

// TestTxnOffsetCommitFencesMembers (issue 11, item 4): a transactional
// offset commit is checked like Kafka's: a member of an older generation
// (one that lost its partitions in a rebalance), an unknown member and a
// fenced static instance stage nothing; the current generation and
// requests before v3 (no member fields) do.
func TestTxnOffsetCommitFencesMembers(t *testing.T) {
	f := newFixture(t)
	c := f.coordinator(nil)
	leader, follower := stableGroup(t, c)

	// The leader rejoining rebalances the group to generation 2.
	jl := leader.join(t)
	if code := follower.heartbeat(1); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat during the rebalance: %v", kerr.ErrorForCode(code))
	}
	jf := follower.join(t)
	leader.joined(t, recv(t, jl))
	follower.joined(t, recv(t, jf))
	sf := follower.sync(t, nil)
	syncedAssignment(t, leader, recv(t, leader.sync(t, map[string]string{leader.id: "L2", follower.id: "F2"})))
	syncedAssignment(t, follower, recv(t, sf))

	for _, tc := range []struct {
		what string
		who  TxnCommitter
		want error
	}{
		{"stale generation", TxnCommitter{Generation: 1, MemberID: follower.id}, kerr.IllegalGeneration},
		{"future generation", TxnCommitter{Generation: 3, MemberID: follower.id}, kerr.IllegalGeneration},
		{"member id without generation", TxnCommitter{Generation: -1, MemberID: follower.id}, kerr.IllegalGeneration},
		{"unknown member", TxnCommitter{Generation: 2, MemberID: "who"}, kerr.UnknownMemberID},
		{"unknown instance", TxnCommitter{Generation: 2, MemberID: follower.id, InstanceID: ptr("i")}, kerr.UnknownMemberID},
		{"current generation", TxnCommitter{Generation: 2, MemberID: follower.id}, nil},
		{"before v3", TxnCommitter{Generation: -1}, nil},
	} {
		err, staged := txnCommit(c, tc.who)
		if !errors.Is(err, tc.want) || err == nil && tc.want != nil {
			t.Errorf("%s: %v, want %v", tc.what, err, tc.want)
		}
		if staged != (tc.want == nil) {
			t.Errorf("%s: staged = %v, want %v", tc.what, staged, tc.want == nil)
		}
	}

	// Generation commits to a group that does not exist are illegal.
	other := *follower
	if err := other.c.TxnOffsetCommit(context.Background(), "nobody", TxnCommitter{Generation: 1, MemberID: "m"}, func(context.Context) error {
		t.Error("staged a commit to a group that does not exist")
		return nil
	}); !errors.Is(err, kerr.IllegalGeneration) {
		t.Errorf("commit to a group that does not exist: %v, want ILLEGAL_GENERATION", err)
	}
}

// TestTxnOffsetCommitFencesStaticInstance: a static member replaced by a
// new incarnation of its instance cannot commit with its old member id.
func TestTxnOffsetCommitFencesStaticInstance(t *testing.T) {
	f := newFixture(t)
	c := f.coordinator(nil)
	s := newJoiner(c)
	s.instance = "i1"
	s.joined(t, recv(t, s.join(t)))
	syncedAssignment(t, s, recv(t, s.sync(t, map[string]string{s.id: "all"})))
	old := s.id

	// The instance restarts: it rejoins without a member id and is
	// given a new one, without a rebalance.
	s.id = ""
	s.joined(t, recv(t, s.join(t)))
	if s.id == old {
		t.Fatal("the restarted instance kept its member id")
	}
	if err, staged := txnCommit(c, TxnCommitter{Generation: s.generation, MemberID: old, InstanceID: &s.instance}); !errors.Is(err, kerr.FencedInstanceID) || staged {
		t.Fatalf("commit by the replaced incarnation: %v (staged %v), want FENCED_INSTANCE_ID", err, staged)
	}
	if err, staged := txnCommit(c, TxnCommitter{Generation: s.generation, MemberID: s.id, InstanceID: &s.instance}); err != nil || !staged {
		t.Fatalf("commit by the current incarnation: %v (staged %v)", err, staged)
	}
}

// TestTxnOffsetCommitOnStaleCoordinator: a coordinator whose memory is
// behind the store (another agent moved the group on) must not let a
// member of the old generation commit: the store check catches it, the
// group is unloaded and the client, sent back to find the coordinator,
// gets the right answer from the reloaded group.
func TestTxnOffsetCommitOnStaleCoordinator(t *testing.T) {
	f := newFixture(t)
	old := f.coordinator(nil)
	leader, follower := stableGroup(t, old)

	// Another coordinator loads generation 1 and rebalances to 2.
	cur := f.coordinator(nil)
	nl, nf := *leader, *follower
	nl.c, nf.c = cur, cur
	jl := nl.join(t)
	jf := nf.join(t)
	nl.joined(t, recv(t, jl))
	nf.joined(t, recv(t, jf))
	sf := nf.sync(t, nil)
	syncedAssignment(t, &nl, recv(t, nl.sync(t, map[string]string{nl.id: "L2", nf.id: "F2"})))
	syncedAssignment(t, &nf, recv(t, sf))

	// The old coordinator still holds generation 1.
	who := TxnCommitter{Generation: 1, MemberID: follower.id}
	if err, staged := txnCommit(old, who); !errors.Is(err, kerr.NotCoordinator) || staged {
		t.Fatalf("commit at generation 1 through the stale coordinator: %v (staged %v), want NOT_COORDINATOR", err, staged)
	}
	if err, staged := txnCommit(old, who); !errors.Is(err, kerr.IllegalGeneration) || staged {
		t.Fatalf("retry on the reloaded group: %v (staged %v), want ILLEGAL_GENERATION", err, staged)
	}
	// The old coordinator's reload claimed the group: the current one
	// sends the committer away once, and takes the group back on the retry.
	if err, staged := txnCommit(cur, TxnCommitter{Generation: 2, MemberID: follower.id}); !errors.Is(err, kerr.NotCoordinator) || staged {
		t.Fatalf("commit at generation 2 on the coordinator whose claim was superseded: %v (staged %v), want NOT_COORDINATOR", err, staged)
	}
	if err, staged := txnCommit(cur, TxnCommitter{Generation: 2, MemberID: follower.id}); err != nil || !staged {
		t.Fatalf("commit at generation 2: %v (staged %v)", err, staged)
	}
}

func ptr[T any](v T) *T { return &v }
