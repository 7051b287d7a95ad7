// Package agent is Silt's broker: the behaviour behind each Kafka API, one
// file per API (produce.go, fetch.go, metadata.go, ...), on top of the wire
// server, an object-store Bucket and a metastore Store.
//
// Write path: Produce validates each batch and appends it to the Buffer
// shared by all partitions. The Flusher cuts the buffer every flush.interval
// or flush.bytes into ONE segment object, uploads it (uploads of consecutive
// flushes overlap), and the Committer commits flushes strictly in order, one
// metastore transaction each, which assigns offsets. Only then are the
// producers acknowledged.
//
// Read path: Fetch finds index rows (cached in the agent, they are
// immutable), reads those byte ranges through the block cache that the flush
// filled, patches base offsets and returns whole batches; long polls wake when
// a commit moves a partition's high watermark.
//
// Internal topics (internaltopics.go): __consumer_offsets, served from the
// committed offsets and saved groups through group.OffsetLog, and an empty
// __transaction_state, listed as Kafka lists them; no "__" name is
// auto-created.
//
// Authorization: with authorizer=acl every handler checks the request's
// principal against the ACLs (auth/acl) before it acts and answers Kafka's
// *_AUTHORIZATION_FAILED codes per topic, partition, group or
// transactional id (authorize.go, authorize_groups.go); acls.go serves
// CreateAcls, DescribeAcls and DeleteAcls.
//
// Client quotas: clientquotas.go serves DescribeClientQuotas and
// AlterClientQuotas; quotas.go enforces producer_byte_rate,
// consumer_byte_rate and request_percentage on this agent's own traffic
// (package quota), as each Kafka broker enforces them on its own, and
// throttles through throttle_time_ms and a muted connection (KIP-219).
package agent
