// Package s3 is the objectstore.Bucket driver for AWS S3 and S3-compatible
// stores such as MinIO, built on aws-sdk-go-v2.
//
// Credentials come from the AWS default chain (environment, shared config
// files, SSO, web identity, instance or task roles); nothing secret is ever
// part of a Config or bucket URL. A Config's Prefix scopes the bucket: key k
// is stored as "<prefix>/k" and List strips the prefix again.
//
// Requests are retried by the SDK's standard retryer with exponential
// backoff and full jitter on throttling (503 SlowDown and friends), 5xx
// responses, timeouts and connection errors, up to Config.MaxAttempts, and
// stop as soon as the context is cancelled. Errors are classified into the
// objectstore sentinels (ErrNotFound, ErrInvalidRange, ErrBucketNotFound,
// ErrAccessDenied); a missing bucket or refused credentials produce a message
// that says so. Call CheckBucket at startup to fail early and clearly.
//
// The credentials need s3:ListBucket on the bucket as well as
// s3:GetObject, s3:PutObject and s3:DeleteObject on its objects: without
// ListBucket, S3 answers 403 instead of 404 for a missing key, which this
// driver must then report as access denied rather than not found.
package s3
