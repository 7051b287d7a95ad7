// Package instrumented is a metastore.Store decorator that times the calls
// on the agent's hot paths (committing flushes, index lookups, partition
// loads, upload records, heartbeats) as the Prometheus histogram
// silt_metastore_request_duration_seconds and counts their failures in
// silt_metastore_request_errors_total, both labelled by operation only.
//
// The decorator embeds the wrapped Store, so methods it does not time (and
// methods added to the interface later) pass straight through. Optional
// interfaces of the wrapped store that the agent checks for
// (metastore.CommitWatcher) are kept: Wrap returns a value implementing
// them exactly when the wrapped store does.
package instrumented
