// Package partition owns the agent's read-side view of each partition: the
// high watermark, last stable offset and log start offset; the newest index
// rows (the tail) and the window of rows last read for a consumer catching
// up; long-poll wakeups; the topic cache (Topics); keeping all of it current
// with other agents' commits (WatchCommits); and the fetch read path through
// the block cache (Reader).
//
// The metastore is the source of truth; everything here is a cache that the
// agent's own commits (through Topics.Committed, called by the write
// pipeline) and other agents' notifications keep current. A cached value
// may lag the store, never contradict it.
//
// Deleted topics. A topic's name can mean a new topic (a new id) after a
// delete and a re-create; an agent must never answer for the new one with
// the old one's cached offsets or index rows, which a client fetching by
// name (Fetch < v13), ListOffsets or Metadata could not tell apart.
//   - The store announces every deletion through the same notification
//     path as commits (metastore.CommitWatcher; in postgres a NOTIFY in
//     DeleteTopic's transaction, on the commits' connection, so in commit
//     order), numbered in commit order. WatchCommits drops the topic at
//     once (its partitions are marked gone, so readers still holding one
//     answer "unknown topic" and waiting long polls wake) and then
//     acknowledges the number to the store.
//   - The store refuses to create a topic under a deleted topic's name
//     (ErrTopicDeletionPending, "marked for deletion" to the client) until
//     every live agent has acknowledged that deletion. So by the time a
//     re-created topic can be produced to or read, every live agent has
//     dropped the old one, and a lookup by name finds the new id.
//   - A notification that never arrives (LISTEN down, or half-open until
//     the keepalive notices) is covered by the reconnect: Ready invalidates
//     every partition, lists the topics again — dropping those deleted
//     meanwhile — and only then acknowledges everything up to the latest
//     deletion. An agent not listening does not acknowledge, so creates of
//     those names wait for it (a few seconds, then the client retries) or
//     for its lease to lapse.
//   - The read path checks ids too: a load or resync that finds the topic
//     id gone from the store drops the topic (Topics.reread), so after an
//     invalidation nothing of a deleted topic is served from memory.
//
// What is left: an agent paused (SIGSTOP) for longer than its membership
// lease stops counting, so a re-create can go ahead without it; when it
// wakes, its own queued notification drops the topic, but a request it
// handles in the instant before that can still be answered from the old
// cache. Closing that needs agents to stop trusting their caches once
// their own lease lapsed.
//
// Log start offsets. Retention and DeleteRecords move a partition's log
// start offset in the store and prune the index rows below it; their
// objects stay in the bucket for gc.grace. This agent learns the new value
// from its own DeleteRecords and retention job (Topics.LogStartMoved), from
// other agents' through the store's notification, and by re-reading before
// any out-of-range answer; cached rows below it are dropped. A reader still
// holding a pruned row reads its bytes within the grace; after it, the
// object is gone and Reader.Read answers ErrIndexGone, so the caller
// re-reads the log start and answers out of range (or reads fresh rows).
//
// Compaction. The compactor (jobs) replaces a partition's flush rows with
// one row of a compacted segment in the store; agents are not told. A
// reader holding the old rows (the tail, the window) reads the old objects
// until gc.grace has passed; then a read finds its object gone, answers
// ErrIndexGone, drops the cached rows, and the caller resolves the
// compacted row from the store. Compacted rows are tens of MiB, so a read
// takes what it returns in pieces, and each partition remembers a few
// places where reads stopped (object, byte position, offset) so that a
// consumer reading on starts there; objects never change, so such a place
// stays true for as long as the object exists.
//
// Keyed compaction (cleanup.policy=compact) replaces rows the same way
// with rows of cleaned segments, whose batches carry their own offsets
// with gaps between them and at a row's end (HasRealOffsets): a read takes
// each batch's offset from the batch and goes on past a gap to the next
// row. Agents drop their cached rows of the partition when a cleaning
// swap commits (Topics.IndexReplaced): the agent that cleaned at once,
// others on the store's notification; until then they read the older,
// uncleaned records, at the same offsets.
//
// Lock order: Topics.mu, then Partition.mu. Nothing takes Topics.mu while
// holding a Partition's mu.
//
// This package does not write: it never uploads, commits or decides
// offsets, and it must not import agent, ingest, group or txn.
package partition
