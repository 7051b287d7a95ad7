// Package bucketurl opens an objectstore.Bucket from a URL, so that one
// configuration string (a flag, an environment variable, a config key)
// selects the driver:
//
//	s3://bucket/optional/prefix?region=eu-west-1
//	s3://bucket/prefix?endpoint=http://127.0.0.1:9000&path_style=true&region=us-east-1
//	file:///var/lib/silt/bucket
//	mem://
//
// s3 query parameters: region, endpoint, path_style (true/false) and
// max_attempts. Credentials never appear in the URL; the s3 driver takes them
// from the AWS default chain, so URLs are safe to log.
package bucketurl
