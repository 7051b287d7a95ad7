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
package s3
