package metastore

import (
	"context"
	"strings"
)

// ACLStore keeps Kafka ACL bindings (CreateAcls, DescribeAcls, DeleteAcls).
// The authorizer (auth/acl) reads them all and matches in memory; a store
// with a CommitWatcher reports every change (CommitHandler.ACLsChanged).
type ACLStore interface {
	// CreateACLs stores bindings in one transaction. A binding equal to a
	// stored one is not stored twice. Every field must be concrete (no
	// ANY or MATCH): callers validate.
	CreateACLs(ctx context.Context, acls []ACL) error
	// ACLs lists the stored bindings f matches, in a stable order
	// (resource type, resource name, pattern type, principal, host,
	// operation, permission).
	ACLs(ctx context.Context, f ACLFilter) ([]ACL, error)
	// DeleteACLs deletes, in one transaction, the stored bindings each
	// filter matches and returns them per filter (a binding matched by
	// several filters is listed under each).
	DeleteACLs(ctx context.Context, fs []ACLFilter) ([][]ACL, error)
}

// The enums below carry Kafka's wire values, so they pass through the
// protocol and the store unchanged. Zero is UNKNOWN everywhere.

// ACLResourceType is what an ACL protects.
type ACLResourceType int8

const (
	ResourceAny             ACLResourceType = 1 // filters only
	ResourceTopic           ACLResourceType = 2
	ResourceGroup           ACLResourceType = 3
	ResourceCluster         ACLResourceType = 4
	ResourceTransactionalID ACLResourceType = 5
)

// ACLPatternType says how an ACL's resource name matches.
type ACLPatternType int8

const (
	PatternAny      ACLPatternType = 1 // filters only: any pattern type, names equal
	PatternMatch    ACLPatternType = 2 // filters only: every binding that applies to the name
	PatternLiteral  ACLPatternType = 3 // the name, or every name if "*"
	PatternPrefixed ACLPatternType = 4 // names starting with it
)

// ACLOperation is what an ACL allows or denies.
type ACLOperation int8

const (
	OpAny             ACLOperation = 1 // filters only
	OpAll             ACLOperation = 2
	OpRead            ACLOperation = 3
	OpWrite           ACLOperation = 4
	OpCreate          ACLOperation = 5
	OpDelete          ACLOperation = 6
	OpAlter           ACLOperation = 7
	OpDescribe        ACLOperation = 8
	OpClusterAction   ACLOperation = 9
	OpDescribeConfigs ACLOperation = 10
	OpAlterConfigs    ACLOperation = 11
	OpIdempotentWrite ACLOperation = 12
)

// ACLPermission is ALLOW or DENY.
type ACLPermission int8

const (
	PermissionAny   ACLPermission = 1 // filters only
	PermissionDeny  ACLPermission = 2
	PermissionAllow ACLPermission = 3
)

// ACLWildcard is the literal resource name and the host that match
// everything.
const ACLWildcard = "*"

// ACL is one binding: Permission for Principal ("User:alice", or "User:*"
// for everyone) connecting from Host (an IP, or "*") to do Operation on the
// resources ResourceName and PatternType select.
type ACL struct {
	ResourceType ACLResourceType
	ResourceName string
	PatternType  ACLPatternType
	Principal    string
	Host         string
	Operation    ACLOperation
	Permission   ACLPermission
}

// ACLFilter selects bindings as Kafka's AclBindingFilter does. A nil
// string field matches any value; the Any values of the enums match any
// value; PatternMatch selects every binding that applies to ResourceName
// (the literal name, the literal wildcard, and prefixes of it).
type ACLFilter struct {
	ResourceType ACLResourceType
	ResourceName *string
	PatternType  ACLPatternType
	Principal    *string
	Host         *string
	Operation    ACLOperation
	Permission   ACLPermission
}

// Matches reports whether f selects b.
func (f ACLFilter) Matches(b ACL) bool {
	if f.ResourceType != ResourceAny && f.ResourceType != b.ResourceType {
		return false
	}
	if !f.matchesPattern(b) {
		return false
	}
	if f.Principal != nil && *f.Principal != b.Principal {
		return false
	}
	if f.Host != nil && *f.Host != b.Host {
		return false
	}
	if f.Operation != OpAny && f.Operation != b.Operation {
		return false
	}
	return f.Permission == PermissionAny || f.Permission == b.Permission
}

func (f ACLFilter) matchesPattern(b ACL) bool {
	switch f.PatternType {
	case PatternMatch:
		if f.ResourceName == nil {
			return true
		}
		name := *f.ResourceName
		switch b.PatternType {
		case PatternLiteral:
			return b.ResourceName == name || b.ResourceName == ACLWildcard
		case PatternPrefixed:
			return strings.HasPrefix(name, b.ResourceName)
		}
		return false
	case PatternAny:
	default:
		if f.PatternType != b.PatternType {
			return false
		}
	}
	return f.ResourceName == nil || *f.ResourceName == b.ResourceName
}
