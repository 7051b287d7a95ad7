// Package sqlite is the metastore.Store of the embedded single-node default,
// on modernc.org/sqlite (pure Go) through database/sql.
//
// Open creates the database file if needed and applies the embedded
// migrations (migrations/*.sql) itself: a single node has no one to race
// with but other processes opening the same file, and those are serialized
// by SQLite's write lock. Migrate exists too, for `silt migrate` and for
// symmetry with the postgres store.
//
// The database runs in WAL mode. Every write goes through one connection and
// starts with BEGIN IMMEDIATE, so concurrent writers queue in Go instead of
// failing with SQLITE_BUSY; reads use a separate pool and never wait for
// writers. Times (leases, agent liveness, uploads) come from the local clock.
package sqlite
