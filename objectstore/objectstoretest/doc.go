// Package objectstoretest is the acceptance suite for objectstore.Bucket.
// Every driver and decorator runs it from its own tests:
//
//	func TestBucket(t *testing.T) {
//		objectstoretest.Run(t, func(t *testing.T) objectstore.Bucket { return mem.New() })
//	}
//
// It lives in a non-test file so that packages outside objectstore (caching
// or fault-injecting decorators) can run it too.
package objectstoretest
