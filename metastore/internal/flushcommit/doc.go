// Package flushcommit is the Go that both stores' CommitFlush share beyond
// their SQL: the idempotent-producer sequence check (ProducerState, for the
// store without SQL procedures; the postgres function implements the same
// rules), turning verdict codes into metastore.BatchResult, rebuilding the
// results of a commit retried after it had already succeeded, and the
// transaction bookkeeping a chunk's accepted batches need. Only
// metastore/postgres and metastore/sqlite use it; what callers see of it is
// in metastore (BatchResult, IndexRuns, ErrVerdictUnknown).
package flushcommit
