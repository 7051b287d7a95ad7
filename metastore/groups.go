package metastore

import (
	"context"
	"errors"
)

// GroupStore keeps consumer groups (classic protocol): the state a
// coordinator needs to describe a group and to resume it after a failover,
// and the offsets it committed. The coordinating agent holds a group in
// memory; the store fences every change that matters, so two agents that
// both believe they coordinate a group cannot both advance it.
//
// Contract, in addition to Store's:
//   - A group exists once it is saved or has committed offsets. A group
//     that was never saved has generation 0 and no members.
//   - SaveGroup is a compare-and-set on the generation: of two saves from
//     the same stored generation, at most one succeeds (unless both keep the
//     generation, which only updates a member's id or assignment).
//   - CommitGroupOffsets checks the committer against the stored group in
//     the same transaction as the offset write.
type GroupStore interface {
	// Group returns a saved group, or ok=false if it was never saved (it may
	// still have offsets).
	Group(ctx context.Context, id string) (g Group, ok bool, err error)
	// ClaimGroup makes the caller the group's coordinator of record: it
	// moves the group's coordinator epoch forward and returns it. Saves and
	// commits that carry an older epoch are refused from then on
	// (ErrCoordinatorMoved), so an agent that coordinated the group before
	// (paused, or briefly disagreeing on placement) cannot write over the
	// new coordinator's decisions with a request it still had in hand.
	ClaimGroup(ctx context.Context, id string) (epoch int64, err error)
	// SaveGroup stores g if the stored generation is prevGeneration (0: not
	// saved yet) and g.Generation >= prevGeneration. Otherwise nothing
	// changes and the error wraps ErrStaleGeneration. With g.Epoch > 0 the
	// group's coordinator epoch must still be g.Epoch, else
	// ErrCoordinatorMoved.
	SaveGroup(ctx context.Context, g Group, prevGeneration int32) error
	// Groups lists every group (saved, or with committed offsets only),
	// ordered by id.
	Groups(ctx context.Context) ([]GroupSummary, error)
	// DeleteGroup removes a group and its offsets. A group with members
	// gives ErrGroupNotEmpty; one that does not exist gives
	// ErrGroupNotFound.
	DeleteGroup(ctx context.Context, id string) error
	// CommitGroupOffsets stores offsets like CommitOffsets, fenced:
	//   - generation >= 0: the stored group must be at that generation and
	//     list memberID among its members, else ErrStaleGeneration or
	//     ErrUnknownMember.
	//   - generation < 0 (a "simple" commit by a client outside the group):
	//     the stored group must have no members, else ErrGroupNotEmpty.
	// With epoch > 0 the group's coordinator epoch (ClaimGroup) must still
	// be epoch, else ErrCoordinatorMoved. Nothing is written when a check
	// fails. With no offsets it only checks (TxnOffsetCommit fences its
	// committer this way).
	CommitGroupOffsets(ctx context.Context, group string, epoch int64, generation int32, memberID string, offsets []CommittedOffset) error
	// DeleteGroupOffsets removes the group's offsets for the given
	// partitions; absent ones are ignored.
	DeleteGroupOffsets(ctx context.Context, group string, partitions []GroupPartition) error
}

var (
	// ErrStaleGeneration: a group save or offset commit from a generation
	// other than the stored one.
	ErrStaleGeneration = errors.New("stale group generation")
	// ErrUnknownMember: an offset commit by a member the stored generation
	// does not list.
	ErrUnknownMember = errors.New("unknown group member")
	// ErrGroupNotEmpty: deleting, or committing outside the group to, a
	// group that has members.
	ErrGroupNotEmpty = errors.New("group has members")
	// ErrGroupNotFound: a group that was never saved and has no offsets.
	ErrGroupNotFound = errors.New("group not found")
	// ErrCoordinatorMoved: a group save or offset commit, or a transaction
	// put, from a coordinator whose claim on the group or transactional id
	// another agent has since superseded (ClaimGroup, ClaimTxn).
	ErrCoordinatorMoved = errors.New("claimed by another coordinator")
)

// Group is a consumer group as last saved by its coordinator: at the end of
// each join phase (State "CompletingRebalance", no assignments), at the end
// of each rebalance (with assignments) and whenever it becomes empty.
type Group struct {
	ID string
	// Epoch is the coordinator epoch the save comes from (ClaimGroup); 0
	// saves unfenced. Group does not return it.
	Epoch        int64
	Generation   int32
	ProtocolType string
	Protocol     string // the chosen protocol (assignor); empty if no members
	Leader       string // member id; empty if no members
	State        string // Kafka's state name, e.g. "Stable", "Empty"
	Members      []GroupMember
	// Type is Kafka's group type: "classic" (JoinGroup/SyncGroup),
	// "consumer" (KIP-848, ConsumerGroupHeartbeat) or "share" (KIP-932,
	// ShareGroupHeartbeat). Empty means classic.
	Type string
	// ConsumerState is a consumer or share group's state beyond Members,
	// as the group package encodes it (member epochs, assignments, the target
	// assignment); opaque to the store. Members still lists every member
	// (the commit check and DeleteGroup use it), and Generation is the
	// group epoch.
	ConsumerState []byte
}

// TypeName is g.Type, with "classic" for empty.
func (g Group) TypeName() string {
	if g.Type == "" {
		return GroupTypeClassic
	}
	return g.Type
}

// Kafka's group types.
const (
	GroupTypeClassic  = "classic"
	GroupTypeConsumer = "consumer"
	GroupTypeShare    = "share"
)

// GroupMember is one member of a saved group.
type GroupMember struct {
	ID                 string `json:"id"`
	InstanceID         string `json:"instance_id,omitempty"` // group.instance.id; empty for dynamic members
	ClientID           string `json:"client_id"`
	ClientHost         string `json:"client_host"`
	SessionTimeoutMs   int32  `json:"session_timeout_ms"`
	RebalanceTimeoutMs int32  `json:"rebalance_timeout_ms"`
	// Protocols are the member's supported protocols in preference order.
	Protocols  []GroupProtocol `json:"protocols"`
	Assignment []byte          `json:"assignment"`
}

// GroupProtocol is one protocol a member supports, with its metadata.
type GroupProtocol struct {
	Name     string `json:"name"`
	Metadata []byte `json:"metadata"`
}

// GroupSummary is a group as ListGroups shows it.
type GroupSummary struct {
	ID           string
	ProtocolType string
	State        string
	Type         string // GroupTypeClassic, GroupTypeConsumer or GroupTypeShare
}

// GroupPartition names a partition by topic name, as offsets do.
type GroupPartition struct {
	Topic     string
	Partition int32
}
