// Package objectstore defines Bucket, the object-store interface Silt's
// agents write segments to and read them from, with its contract and error
// classification.
//
// Drivers live in sub-packages: s3 (AWS S3 and MinIO through aws-sdk-go-v2),
// file (a local directory, atomic writes by temp file + rename + fsync) and
// mem (in memory). bucketurl.Open picks one from a URL such as
// "s3://bucket/prefix?region=us-east-1", "file:///var/lib/silt" or "mem://".
// objectstoretest.Run is the acceptance suite every driver passes.
//
// Errors are classified by sentinel, never by driver-specific type:
// ErrNotFound (missing key), ErrInvalidRange (Get past the end),
// ErrBucketNotFound (the bucket itself is missing), ErrAccessDenied
// (credentials refused) and ErrInvalidKey (a key breaking the key rules).
package objectstore
