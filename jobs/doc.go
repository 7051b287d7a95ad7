// Package jobs is background work that one agent of the cluster does at a
// time, under a lease in the metastore: the janitor (orphaned uploads,
// expired producer state and transactional ids) and the consumer-lag
// reporter. Retention, compaction and garbage collection belong here next.
//
// A job takes only the store roles and the bucket it uses. It must not
// import agent or the request-serving packages (ingest, partition, group,
// txn): it works from the metastore, the source of truth, not from any
// agent's cache.
package jobs
