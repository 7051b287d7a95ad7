// Package group is the consumer-group coordinator for Kafka's classic
// group protocol: the group state machine, member sessions and rebalance
// timers, the semantics of JoinGroup, SyncGroup, Heartbeat and LeaveGroup,
// the fencing of committed offsets (OffsetCommit, OffsetFetch,
// OffsetDelete), and DescribeGroups, ListGroups and DeleteGroups.
//
// Beside it, consumer groups of KIP-848's protocol (group type
// "consumer"): ConsumerGroupHeartbeat with member epochs and server-side
// assignors (uniform, range), the reconciliation of each member toward
// its target assignment (a partition moves only once its previous owner
// reported it revoked; consumer.go), and ConsumerGroupDescribe. A group
// id is of one type at a time. An empty group takes either protocol.
// A group with members migrates online as Kafka's does, under
// group.consumer.migration.policy (migration.go): a ConsumerGroupHeartbeat
// joining a stable classic group of the consumer embedded protocol
// converts it into a consumer group whose classic members keep their
// partitions and keep speaking JoinGroup, SyncGroup, Heartbeat and
// LeaveGroup, served from the consumer group's reconciliation; a classic
// JoinGroup joins a consumer group with members the same way; and when
// the last member speaking the consumer protocol leaves, the remaining
// classic members form a classic group again and rebalance. A group
// refused a conversion answers as Kafka does (GROUP_ID_NOT_FOUND for a
// heartbeat to a classic group). A conversion is saved before any
// member hears of it. A consumer group is saved, in the same row and
// with the same fencing as a classic group (generation = group epoch),
// before any member learns a new epoch or assignment
// (consumer_store.go), so a coordinator that takes it over resumes every
// member where it stands. Offsets of a consumer group are fenced by
// member epoch (STALE_MEMBER_EPOCH; ILLEGAL_GENERATION for a member
// speaking the classic protocol, whose generation is its member epoch)
// in memory and by the stored group epoch and member list in the store.
//
// Share groups of KIP-932 (group type "share", share.go): membership by
// ShareGroupHeartbeat with member epochs and the server-side simple
// assignor (several members may share a partition: records, not
// partitions, are what members hold, and the metastore's ShareStore
// decides which member holds which record), ShareGroupDescribe, and the
// share offset admin APIs (shareoffsets.go). A share group is saved like
// a consumer group, before any member learns a new epoch or assignment,
// and keeps its type until deleted: the other protocols refuse its id
// (GROUP_ID_NOT_FOUND, INCONSISTENT_GROUP_PROTOCOL). ShareFetch and
// ShareAcknowledge are not here: they read partitions, so they live in
// agent.
//
// OffsetLog serves the committed offsets and saved groups as the records
// of Kafka's internal topic __consumer_offsets (offset commit and group
// metadata keys and values in Kafka's schema, the store's sequence numbers
// as offsets), for tools that read offsets from that topic.
//
// A Coordinator takes decoded kmsg requests and returns kmsg responses.
// JoinGroup and SyncGroup may park a request until the rebalance gets
// there; they then return a channel that delivers the response, and the
// caller decides how to wait for it. Everything else answers at once.
//
// What it needs from outside is declared here, narrowly: a Store (the
// metastore's GroupStore and OffsetStore roles), a placement function that
// says whether this process coordinates a group, and a function that counts
// a topic's partitions. It must not import wire or agent, and knows nothing
// of the write pipeline or of partitions' read state: the Kafka handlers
// that call it live in agent.
//
// A group lives in memory on the process that coordinates it, guarded by
// its own mutex, with timers for member sessions and rebalances. The store
// is the source of truth for everything that must survive a failover, and
// fences it:
//   - the group is saved whenever a client is about to learn a generation
//     or a member id that matters: at the end of every join phase (the
//     new generation, its members and leader, state CompletingRebalance)
//     before any JoinGroup response goes out; at the leader's SyncGroup
//     (with assignments) before any member gets its assignment; when a
//     static member is replaced; and when the group becomes empty. Every
//     save is a compare-and-set from the generation this process last
//     saved or loaded. A failed save unloads the group, so the
//     coordinator rereads the store before serving it again.
//   - offset commits are checked against the stored generation and member
//     list in the same transaction as the write (GroupStore).
//   - memory may lag the store, never contradict it: before a member is
//     told UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION or FENCED_INSTANCE_ID,
//     and when the store refuses a commit the memory accepted, the
//     coordinator compares the stored generation with the one it last
//     saved or loaded. If another agent moved the group on meanwhile, it
//     unloads the group and answers NOT_COORDINATOR; the client's retry
//     meets the group as stored. So two agents that briefly both
//     coordinate a group give its members at most NOT_COORDINATOR.
//   - transactional offset commits (TxnOffsetCommit v3+, KIP-447) are
//     checked as Kafka checks them when they are staged in the
//     transaction, in memory and then against the stored group, holding
//     the group so no local rebalance falls in between
//     (Coordinator.TxnOffsetCommit). They are not checked again when the
//     transaction commits: that commit is already decided.
//
// Placement: IsCoordinator answers from the agent's cached view of the
// cluster; before loading a group (taking it over) the coordinator rereads
// placement from the store (RefreshPlacement), so it never takes a group
// on a view other agents have moved past. An agent that lost a group keeps
// it until its own view catches up (a heartbeat) or the store shows it the
// group moved on (see above); either way its members get NOT_COORDINATOR.
//
// A coordinator that takes over a group loads it as last saved: a stable
// group stays stable (members keep heartbeating and committing with their
// generation); a group whose join phase had ended resumes completing that
// rebalance (the leader sends its SyncGroup here); a join phase that was
// still open is lost and its members rejoin. Member ids handed out with
// MEMBER_ID_REQUIRED are not saved; for one session timeout after loading
// a group, a JoinGroup with a member id the coordinator does not know
// takes that member in as new, since the previous coordinator may have
// handed the id out.
//
// Lock order: group.mu, then Coordinator.mu. Nothing takes a group.mu
// while holding Coordinator.mu.
package group
