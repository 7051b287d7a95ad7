// Package mem is an in-memory objectstore.Bucket. It is a real
// implementation of the contract, not a mock: tests and `silt dev` use it
// where durability does not matter. Data is copied on the way in and out, so
// callers may reuse their buffers.
package mem
