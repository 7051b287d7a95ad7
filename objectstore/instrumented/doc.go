// Package instrumented is an objectstore.Bucket decorator that counts and
// times every call to the bucket it wraps, as Prometheus metrics.
//
// Wrap the driver the agent talks to (below its cache) so the figures are
// real bucket requests: silt_s3_requests_total, silt_s3_request_errors_total
// and silt_s3_request_duration_seconds, labelled by operation (put, get,
// head, delete, list), plus silt_s3_transfer_bytes_total for puts and gets.
// The series count is fixed: no key, prefix or bucket labels.
package instrumented
