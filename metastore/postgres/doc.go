// Package postgres is the metastore.Store for clusters, on pgx/v5.
//
// Open connects a pool and checks the schema; it never migrates. Migrate
// applies the embedded migrations (migrations/*.sql) under a Postgres
// advisory lock, so any number of agents starting at once can each call it.
// The agent migrates on start; `silt migrate` migrates alone.
//
// CommitFlush is one call of the commit_flush SQL function (defined in
// migrations/0005_producers.sql, last rewritten by 0017_index_rows.sql):
// one round trip whatever the number of partitions, with the chunk columns
// passed as parallel arrays. Per chunk it updates the partition row once
// (which also locks it, in key order) and inserts one index row into one
// btree, the primary key: index rows reference segments by number, each
// segment lists the offset ranges its commit assigned (for IndexBySegment
// and garbage collection), and timestamp lookups search the rows' running
// maximum timestamp instead of an index.
//
// Times (leases, agent liveness, upload records) come from the database
// clock, so agents with skewed clocks agree.
package postgres
