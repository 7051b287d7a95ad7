// Package segment is the on-bucket segment format and the Kafka record-batch
// plumbing around it. On the write path the agent checks each producer batch
// with ValidateBatch, hands the batches of all partitions in a flush to a
// Writer, and uploads the single object Finish lays out: a header, one
// contiguous chunk of untouched v2 record batches per partition, a footer
// indexing the chunks (ChunkInfo) and a fixed-size trailer. On the read path
// a Reader, from Open (ranged reads of trailer and footer in a bucket) or
// Parse (an object in memory), lists the chunks and returns their
// CRC-checked bytes; BatchIter, NextBatch and PatchBaseOffsets walk a chunk
// and give its batches the offsets the metastore assigned at commit. The
// byte-level format, version 1, is specified in FORMAT.md for readers in
// other languages; every input this package decodes may be hostile, so it
// bounds every length by the bytes present (decompressed sizes by the
// caller's bound) and never panics.
package segment
