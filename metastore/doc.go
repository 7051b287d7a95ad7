// Package metastore defines Store, the metadata the agents share: topics and
// their configs, partition offsets, the index of committed segment chunks,
// uploads awaiting commit, producer ids, consumer offsets, leases and the
// agent registry.
//
// The central operation is CommitFlush: one transaction per flushed segment
// that assigns offsets to every partition it touches and records where the
// bytes are. Offsets are assigned at commit, so commit order is offset order.
//
// The other end of a record's life: RetentionStore moves partitions' log
// start offsets (retention, DeleteRecords) and prunes what falls below
// them; GCStore is the garbage queue through which every object leaves the
// bucket, doomed in the transaction that proves nothing references it (so
// a racing commit is refused) and released only after a grace period.
//
// Share groups (KIP-932): ShareStore keeps each share partition's start
// offset and in-flight record states, changed one transaction per
// partition so that any agent can serve a share fetch and no record is
// held by two members; the transitions are pure functions in share.go,
// the same for both stores. GroupConfigStore keeps group configs.
//
// Stores live in sub-packages: postgres (pgx/v5, for clusters) and sqlite
// (modernc.org/sqlite, the embedded single-node default). metastoreurl.Open
// picks one from a URL; metastoretest.Run is the conformance suite both pass.
package metastore
