// Package ingest is the write pipeline: every byte an agent writes to a
// partition — produced batches and transaction markers alike — enters
// through Pipeline.Submit.
//
// Submitted batches wait in one buffer shared by all partitions, bounded by
// a byte budget (a Submit waits while it is used up). The flusher cuts the
// buffer every flush interval or flush size into ONE segment object and
// uploads it; uploads of consecutive flushes overlap. The committer commits
// flushes strictly in cut order, one metastore transaction each, which
// assigns offsets — so commit order is offset order and one producer's
// in-flight batches keep their order. Only then are submitters answered and
// the Observer told, so readers see nothing before it is durable.
//
// Upload keys are recorded in the metastore before anything is written
// under them (reserved in batches, so a flush costs one store transaction):
// an upload that never commits is an orphan the janitor can find, and
// nothing acknowledged is ever in one.
//
// This package owns no read state: it tells an Observer (the partition
// cache) what committed. It must not import agent, partition, group or txn.
package ingest
