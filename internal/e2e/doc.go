// Package e2e holds Silt's end-to-end tests: they build the silt binary, run
// real agent processes (embedded default, or on MinIO + Postgres started by
// testenv), and drive them with real Kafka clients — kcat and franz-go —
// including SIGKILL in the middle of a load.
package e2e
