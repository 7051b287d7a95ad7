// Package metastoretest is the conformance suite every metastore.Store
// passes. A store's tests call Run with a constructor that returns a fresh,
// empty, migrated store:
//
//	func TestStore(t *testing.T) {
//		metastoretest.Run(t, func(t *testing.T) metastore.Store { ... })
//	}
//
// The suite checks the contract in metastore's doc comments, including the
// parts only concurrency shows: concurrent CommitFlush calls assign every
// offset exactly once without deadlock, and producer ids are unique.
package metastoretest
