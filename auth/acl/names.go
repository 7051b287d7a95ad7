package acl

import (
	"fmt"
	"strings"

	"github.com/siltstream/silt/metastore"
)

// Binding is one stored ACL; Filter selects bindings.
type (
	Binding = metastore.ACL
	Filter  = metastore.ACLFilter
)

var resourceTypeNames = map[metastore.ACLResourceType]string{
	metastore.ResourceAny:             "ANY",
	metastore.ResourceTopic:           "TOPIC",
	metastore.ResourceGroup:           "GROUP",
	metastore.ResourceCluster:         "CLUSTER",
	metastore.ResourceTransactionalID: "TRANSACTIONAL_ID",
}

var patternTypeNames = map[metastore.ACLPatternType]string{
	metastore.PatternAny:      "ANY",
	metastore.PatternMatch:    "MATCH",
	metastore.PatternLiteral:  "LITERAL",
	metastore.PatternPrefixed: "PREFIXED",
}

var operationNames = map[metastore.ACLOperation]string{
	metastore.OpAny:             "ANY",
	metastore.OpAll:             "ALL",
	metastore.OpRead:            "READ",
	metastore.OpWrite:           "WRITE",
	metastore.OpCreate:          "CREATE",
	metastore.OpDelete:          "DELETE",
	metastore.OpAlter:           "ALTER",
	metastore.OpDescribe:        "DESCRIBE",
	metastore.OpClusterAction:   "CLUSTER_ACTION",
	metastore.OpDescribeConfigs: "DESCRIBE_CONFIGS",
	metastore.OpAlterConfigs:    "ALTER_CONFIGS",
	metastore.OpIdempotentWrite: "IDEMPOTENT_WRITE",
}

var permissionNames = map[metastore.ACLPermission]string{
	metastore.PermissionAny:   "ANY",
	metastore.PermissionDeny:  "DENY",
	metastore.PermissionAllow: "ALLOW",
}

// ResourceTypeName, PatternTypeName, OperationName and PermissionName give
// Kafka's names ("UNKNOWN" for values Kafka does not define).
func ResourceTypeName(v metastore.ACLResourceType) string { return nameOf(resourceTypeNames, v) }
func PatternTypeName(v metastore.ACLPatternType) string   { return nameOf(patternTypeNames, v) }
func OperationName(v metastore.ACLOperation) string       { return nameOf(operationNames, v) }
func PermissionName(v metastore.ACLPermission) string     { return nameOf(permissionNames, v) }

// ParseResourceType, ParsePatternType, ParseOperation and ParsePermission
// read Kafka's names, case-insensitively, with '-' for '_'
// ("transactional-id", "describe-configs").
func ParseResourceType(s string) (metastore.ACLResourceType, error) {
	return parse(resourceTypeNames, "resource type", s)
}
func ParsePatternType(s string) (metastore.ACLPatternType, error) {
	return parse(patternTypeNames, "pattern type", s)
}
func ParseOperation(s string) (metastore.ACLOperation, error) {
	return parse(operationNames, "operation", s)
}
func ParsePermission(s string) (metastore.ACLPermission, error) {
	return parse(permissionNames, "permission", s)
}

func nameOf[T comparable](names map[T]string, v T) string {
	if n, ok := names[v]; ok {
		return n
	}
	return "UNKNOWN"
}

func parse[T comparable](names map[T]string, what, s string) (T, error) {
	want := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	for v, n := range names {
		if n == want {
			return v, nil
		}
	}
	var zero T
	return zero, fmt.Errorf("unknown %s %q", what, s)
}

// String formats a binding as kafka-acls does.
func String(b Binding) string {
	return fmt.Sprintf("(principal=%s, host=%s, operation=%s, permissionType=%s) on %s:%s:%s",
		b.Principal, b.Host, OperationName(b.Operation), PermissionName(b.Permission),
		ResourceTypeName(b.ResourceType), PatternTypeName(b.PatternType), b.ResourceName)
}

// ValidateBinding checks a binding to be created: concrete enums (no ANY,
// MATCH or UNKNOWN), a "Type:Name" principal, a non-empty host and name,
// and "kafka-cluster" as the cluster's name.
func ValidateBinding(b Binding) error {
	switch {
	case b.ResourceType < metastore.ResourceTopic || b.ResourceType > metastore.ResourceTransactionalID:
		return fmt.Errorf("invalid resource type %s", ResourceTypeName(b.ResourceType))
	case b.PatternType != metastore.PatternLiteral && b.PatternType != metastore.PatternPrefixed:
		return fmt.Errorf("invalid pattern type %s", PatternTypeName(b.PatternType))
	case b.Operation < metastore.OpAll || b.Operation > metastore.OpIdempotentWrite:
		return fmt.Errorf("invalid operation %s", OperationName(b.Operation))
	case b.Permission != metastore.PermissionAllow && b.Permission != metastore.PermissionDeny:
		return fmt.Errorf("invalid permission %s", PermissionName(b.Permission))
	case b.ResourceName == "":
		return fmt.Errorf("empty resource name")
	case b.Host == "":
		return fmt.Errorf("empty host")
	case b.ResourceType == metastore.ResourceCluster && b.ResourceName != ClusterName:
		return fmt.Errorf("the cluster resource is named %q, not %q", ClusterName, b.ResourceName)
	case b.PatternType == metastore.PatternPrefixed && b.ResourceName == metastore.ACLWildcard:
		return fmt.Errorf("a PREFIXED pattern cannot be %q (use LITERAL)", metastore.ACLWildcard)
	}
	if typ, name, ok := strings.Cut(b.Principal, ":"); !ok || typ == "" || name == "" {
		return fmt.Errorf("principal %q is not Type:Name", b.Principal)
	}
	return nil
}

// ClusterName is the name of the one CLUSTER resource, as in Kafka.
const ClusterName = "kafka-cluster"

// WildcardPrincipal matches every principal of type User.
const WildcardPrincipal = "User:*"
