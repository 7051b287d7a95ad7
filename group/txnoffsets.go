package group

// TxnOffsetCommit's group side (KIP-447): the transaction coordinator
// stages the offsets in the producer's transaction, and the group
// coordinator fences who may stage them. v3+ requests carry the member's
// generation, member id and group.instance.id, checked as Kafka's
// validateOffsetCommit does for a transactional commit: a member that
// lost its partitions in a rebalance cannot commit them over the new
// owner's. v0–2 carry none and are not fenced, as in Kafka. Unlike
// OffsetCommit, a transactional commit is allowed while the group
// completes a rebalance and from outside a group that has members.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/siltstream/silt/metastore"
)

// TxnCommitter is who sends a TxnOffsetCommit: the member's generation
// (-1: none), member id ("" for none) and group.instance.id (nil: none).
// Requests before v3 have none of them.
type TxnCommitter struct {
	Generation int32
	MemberID   string
	InstanceID *string
}

// TxnOffsetCommit checks a transactional offset commit to group against
// the group and, if it may commit, calls stage (which stores the offsets
// in the transaction) while holding the group, so no rebalance of this
// coordinator falls between the check and the staging. It returns a
// kerr error for a refused commit (NOT_COORDINATOR, UNKNOWN_MEMBER_ID,
// ILLEGAL_GENERATION, FENCED_INSTANCE_ID, COORDINATOR_NOT_AVAILABLE), or
// stage's error.
//
// A member's commit is checked twice: against the group in memory, then
// against the stored group. The second check catches a coordinator whose
// memory is behind the store (another agent coordinated the group
// meanwhile): its memory cannot be trusted, so it unloads the group and
// answers NOT_COORDINATOR, and the retry on a reloaded group gets the
// right answer.
func (c *Coordinator) TxnOffsetCommit(ctx context.Context, group string, who TxnCommitter, stage func(context.Context) error) error {
	if group == "" {
		return kerr.InvalidGroupID
	}
	g, code := c.acquire(ctx, group)
	if code != 0 {
		return kerr.ErrorForCode(code)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var member bool
	generation := who.Generation
	if g.share != nil {
		return kerr.GroupIDNotFound
	}
	if g.consumer != nil {
		code = g.checkConsumerCommitLocked(who.MemberID, who.Generation, false, true)
		if code == kerr.StaleMemberEpoch.Code {
			// TxnOffsetCommit has no STALE_MEMBER_EPOCH; Kafka answers
			// ILLEGAL_GENERATION.
			code = kerr.IllegalGeneration.Code
		}
		member = code == 0 && (who.Generation >= 0 || who.MemberID != "")
		generation = g.savedGen
	} else {
		member, code = g.checkTxnCommitLocked(who)
	}
	if code != 0 {
		return kerr.ErrorForCode(g.confirmLocked(code))
	}
	if member && g.savedGen == g.generation {
		// (A generation not saved yet is one the store cannot confirm.)
		cctx, cancel := context.WithTimeout(ctx, storeTimeout)
		// With no offsets, CommitGroupOffsets only checks the committer.
		err := c.store.CommitGroupOffsets(cctx, group, g.epoch, generation, who.MemberID, nil)
		cancel()
		switch {
		case errors.Is(err, metastore.ErrStaleGeneration), errors.Is(err, metastore.ErrUnknownMember), errors.Is(err, metastore.ErrCoordinatorMoved):
			g.movedOnLocked()
			return kerr.NotCoordinator
		case err != nil:
			c.log.Warn("check transactional committer", "group", g.id, "err", err)
			return kerr.CoordinatorNotAvailable
		}
	}
	return stage(ctx)
}

// checkTxnCommitLocked is Kafka's validateOffsetCommit for a
// transactional commit. member reports whether the committer claims to be
// a member of the group (and so must be checked in the store too).
func (g *group) checkTxnCommitLocked(who TxnCommitter) (member bool, code int16) {
	if g.unloaded {
		return false, kerr.NotCoordinator.Code
	}
	instance := who.InstanceID != nil
	if who.Generation < 0 && (g.state == stateEmpty || who.MemberID == "" && !instance) {
		// From outside the group (an admin client, a consumer without
		// group management, or a request before v3): not fenced.
		return false, 0
	}
	if !g.exists() {
		return false, kerr.IllegalGeneration.Code
	}
	if instance {
		switch cur, ok := g.statics[*who.InstanceID]; {
		case !ok:
			return false, kerr.UnknownMemberID.Code
		case cur != who.MemberID:
			return false, kerr.FencedInstanceID.Code
		}
	} else if _, ok := g.members[who.MemberID]; !ok {
		return false, kerr.UnknownMemberID.Code
	}
	if who.Generation != g.generation {
		return false, kerr.IllegalGeneration.Code
	}
	return true, 0
}
