// Package jobs is background work that one agent of the cluster does at a
// time, under a lease in the metastore: the Janitor, which runs Retention
// (retention.ms and retention.bytes move partitions' log start offsets)
// and the GC (the one path by which objects leave the bucket: orphaned
// uploads, expired data, deleted topics, each only once unreferenced and
// after gc.grace) and expires idle producer state and transactional ids;
// and the consumer-lag reporter; and the Compactor, which every agent runs
// for the partitions it leads (no lease: its swap is safe when two agents
// compact one partition), rewriting flush segments into per-partition
// segments, and after each pass the Cleaner, keyed compaction
// (cleanup.policy=compact) after Kafka's log cleaner, with a key → offset
// map of fixed size.
//
// A job takes only the store roles and the bucket it uses. It must not
// import agent or the request-serving packages (ingest, partition, group,
// txn): it works from the metastore, the source of truth, not from any
// agent's cache.
package jobs
