// Package postgres is the metastore.Store for clusters, on pgx/v5.
//
// Open connects a pool and checks the schema; it never migrates. Migrate
// applies the embedded migrations (migrations/*.sql) under a Postgres
// advisory lock, so any number of agents starting at once can each call it.
// The agent migrates on start; `silt migrate` migrates alone.
//
// CommitFlush is one call of the commit_flush SQL function (see
// migrations/0001_init.sql): one round trip whatever the number of
// partitions, with the chunk columns passed as parallel arrays.
//
// Times (leases, agent liveness, upload records) come from the database
// clock, so agents with skewed clocks agree.
package postgres
