package agent

// Authorization (authorizer=acl): every handler asks before it acts, with
// one access value per request (a.access(c)) and one call per resource.
// With authorizer=none access holds no authorizer and every check is
// `true` at the cost of a nil test.
//
// The principal is the connection's (wire.Conn.Principal, set by
// authentication), or what Config.PrincipalBuilder makes of the
// connection. The host is the client's IP, looked at only when some
// binding names a host; neither allocates.

import (
	"context"
	"math"
	"net"
	"net/netip"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/auth/acl"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

// Authorizer names (the authorizer key).
const (
	AuthorizerNone = "none"
	AuthorizerACL  = "acl"
)

// access is who is asking, for one request.
type access struct {
	az        *acl.Authorizer // nil: authorizer=none
	principal string
	c         *wire.Conn
}

// access returns the request's access checker.
func (a *Agent) access(c *wire.Conn) access {
	if a.acls == nil {
		return access{}
	}
	principal := wire.AnonymousPrincipal
	switch {
	case c == nil:
	case a.cfg.PrincipalBuilder != nil:
		principal = a.cfg.PrincipalBuilder(c)
	default:
		principal = c.Principal()
	}
	return access{az: a.acls, principal: principal, c: c}
}

func (x access) host() netip.Addr {
	if x.c == nil || !x.az.NeedsHost() {
		return netip.Addr{}
	}
	if ta, ok := x.c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr()
	}
	ap, _ := netip.ParseAddrPort(x.c.RemoteAddr().String())
	return ap.Addr()
}

func (x access) allow(op metastore.ACLOperation, rt metastore.ACLResourceType, name string) bool {
	return x.az == nil || x.az.Authorize(x.principal, x.host(), op, rt, name)
}

// topic, group, txnID and cluster check op on one resource.
func (x access) topic(op metastore.ACLOperation, name string) bool {
	return x.allow(op, metastore.ResourceTopic, name)
}

func (x access) group(op metastore.ACLOperation, id string) bool {
	return x.allow(op, metastore.ResourceGroup, id)
}

func (x access) txnID(op metastore.ACLOperation, id string) bool {
	return x.allow(op, metastore.ResourceTransactionalID, id)
}

func (x access) cluster(op metastore.ACLOperation) bool {
	return x.allow(op, metastore.ResourceCluster, acl.ClusterName)
}

// anyTopic is Kafka's authorizeByResourceType(op, TOPIC): op is allowed
// on at least one topic.
func (x access) anyTopic(op metastore.ACLOperation) bool {
	return x.az == nil || x.az.AuthorizeAny(x.principal, x.host(), op, metastore.ResourceTopic)
}

// aclWatcher passes the ACL notifications of the commit watch to the
// authorizer, and makes it reload whenever the watch (re)starts: changes
// made while not listening are only in the store.
type aclWatcher struct {
	metastore.CommitWatcher
	acls *acl.Authorizer
}

func (w aclWatcher) WatchCommits(ctx context.Context, h metastore.CommitHandler) error {
	ready := h.Ready
	h.Ready = func(seq int64) error {
		w.acls.Changed()
		if ready != nil {
			return ready(seq)
		}
		return nil
	}
	h.ACLsChanged = w.acls.Changed
	return w.CommitWatcher.WatchCommits(ctx, h)
}

// configs checks op (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a config
// resource as Kafka does, returning 0 or the code to answer: topics need
// it on the topic, brokers on the cluster, groups on the group.
func (x access) configs(op metastore.ACLOperation, rt kmsg.ConfigResourceType, name string) int16 {
	switch rt {
	case kmsg.ConfigResourceTypeTopic:
		if !x.topic(op, name) {
			return kerr.TopicAuthorizationFailed.Code
		}
	case kmsg.ConfigResourceTypeGroupConfig:
		if !x.group(op, name) {
			return kerr.GroupAuthorizationFailed.Code
		}
	default:
		if !x.cluster(op) {
			return kerr.ClusterAuthorizationFailed.Code
		}
	}
	return 0
}

// clusterOperations, topicOperations and groupOperations are the bit
// fields of authorized operations (KIP-430) that DescribeCluster, Metadata
// and DescribeGroups report when asked: bit n set if ACL operation n is
// allowed on the resource. As in Kafka the cluster's is 0 without DESCRIBE
// on it. With authorizer=none they are "not provided" (MinInt32), as
// before authorization existed.
func (x access) clusterOperations() int32 {
	if x.az != nil && !x.cluster(metastore.OpDescribe) {
		return 0
	}
	return x.operations(metastore.ResourceCluster, acl.ClusterName, clusterOps)
}

func (x access) topicOperations(name string) int32 {
	return x.operations(metastore.ResourceTopic, name, topicOps)
}

func (x access) groupOperations(id string) int32 {
	return x.operations(metastore.ResourceGroup, id, groupOps)
}

// The operations Kafka reports per resource type.
var (
	clusterOps = []metastore.ACLOperation{metastore.OpCreate, metastore.OpAlter, metastore.OpDescribe, metastore.OpClusterAction,
		metastore.OpDescribeConfigs, metastore.OpAlterConfigs, metastore.OpIdempotentWrite}
	topicOps = []metastore.ACLOperation{metastore.OpRead, metastore.OpWrite, metastore.OpCreate, metastore.OpDelete,
		metastore.OpAlter, metastore.OpDescribe, metastore.OpDescribeConfigs, metastore.OpAlterConfigs}
	groupOps = []metastore.ACLOperation{metastore.OpRead, metastore.OpDescribe, metastore.OpDelete}
)

func (x access) operations(rt metastore.ACLResourceType, name string, ops []metastore.ACLOperation) int32 {
	if x.az == nil {
		return math.MinInt32
	}
	var bits int32
	for _, op := range ops {
		if x.allow(op, rt, name) {
			bits |= 1 << op
		}
	}
	return bits
}
