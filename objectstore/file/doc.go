// Package file is an objectstore.Bucket backed by a local directory, for
// single-node deployments and tests that want data to survive a restart.
//
// A key maps to the path dir/key, its slashes becoming directories. Put is
// atomic and durable: it writes a temporary file in the target directory,
// fsyncs it, renames it over the key and fsyncs the directory. Temporary
// files (named ".silt-tmp-*") never appear in List and keys whose last
// element would look like one are rejected, as are keys with empty, "." or
// ".." elements. Unlike S3, a key cannot also be a directory: with "a/b"
// stored, Put("a") fails.
//
// Delete removes directories it leaves empty, so a bucket whose objects are
// all deleted is an empty directory again.
package file
