// Package bucketurl opens an objectstore.Bucket from a URL, so that one
// configuration string (a flag, an environment variable, a config key)
// selects the driver:
//
//	s3://bucket/optional/prefix?region=eu-west-1
//	s3://bucket/prefix?endpoint=http://127.0.0.1:9000&path_style=true&region=us-east-1
//	file:///var/lib/silt/bucket
//	mem://
//
//	s3://bucket/prefix?endpoint=https://minio.internal:9000&ca_file=/etc/silt/minio-ca.crt&path_style=true
//
// s3 query parameters: region, endpoint, path_style (true/false),
// max_attempts, and ca_file: a PEM file of CA certificates trusted, besides
// the system's, by an https:// endpoint signed by a private CA (the AWS
// SDK's AWS_CA_BUNDLE does not reach the driver's own HTTP client).
// Credentials never appear in the URL; the s3 driver takes them
// from the AWS default chain, so URLs are safe to log.
package bucketurl
