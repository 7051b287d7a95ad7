// Package acl is Silt's Kafka ACL authorizer: the model's names (resource
// types, pattern types, operations, permissions, as kafka-acls spells
// them), an in-memory Matcher built from the stored bindings and indexed by
// resource type and name, and the Authorizer that holds the current Matcher,
// reloads it from the metastore when told of a change (and periodically, so
// a lost notification heals) and swaps it atomically.
//
// Semantics are Kafka's (StandardAuthorizer): super users pass; a DENY
// that applies wins over any ALLOW; an ALLOW of READ, WRITE, DELETE or
// ALTER also allows DESCRIBE, and ALTER_CONFIGS allows DESCRIBE_CONFIGS
// (DENY implies nothing); ALL matches every operation; principal "User:*"
// matches every principal and host "*" every host; a resource with no
// binding at all (for any principal) is allowed only with
// allow.everyone.if.no.acl.found.
//
// It owns no connection state and never touches the wire: callers pass the
// principal and host. The stored form of a binding is metastore.ACL.
package acl
