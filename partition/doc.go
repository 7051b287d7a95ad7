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
// Lock order: Topics.mu, then Partition.mu. Nothing takes Topics.mu while
// holding a Partition's mu.
//
// This package does not write: it never uploads, commits or decides
// offsets, and it must not import agent, ingest, group or txn.
package partition
