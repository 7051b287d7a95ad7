package acl

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/siltstream/silt/metastore"
)

func bind(rt metastore.ACLResourceType, pt metastore.ACLPatternType, name, principal, host string, op metastore.ACLOperation, perm metastore.ACLPermission) Binding {
	return Binding{ResourceType: rt, ResourceName: name, PatternType: pt, Principal: principal, Host: host, Operation: op, Permission: perm}
}

// someIP is a client address no host-specific binding names.
var someIP = netip.MustParseAddr("192.0.2.1")

const (
	topic   = metastore.ResourceTopic
	group   = metastore.ResourceGroup
	cluster = metastore.ResourceCluster
	lit     = metastore.PatternLiteral
	pre     = metastore.PatternPrefixed
	allow   = metastore.PermissionAllow
	deny    = metastore.PermissionDeny
)

func TestMatcher(t *testing.T) {
	m := NewMatcher([]Binding{
		bind(topic, lit, "orders", "User:alice", "*", metastore.OpRead, allow),
		bind(topic, pre, "pay.", "User:bob", "*", metastore.OpWrite, allow),
		bind(topic, pre, "pay.secret", "User:bob", "*", metastore.OpWrite, deny),
		bind(topic, lit, "*", "User:carol", "*", metastore.OpAll, allow),
		bind(topic, lit, "audit", "User:carol", "*", metastore.OpDescribe, deny),
		bind(topic, lit, "audit", "User:*", "10.0.0.9", metastore.OpRead, allow),
		bind(topic, lit, "cfg", "User:dave", "*", metastore.OpAlterConfigs, allow),
		bind(topic, lit, "logs", "User:erin", "*", metastore.OpRead, deny),
		bind(topic, lit, "logs", "User:erin", "*", metastore.OpAll, allow),
		bind(group, pre, "", "User:alice", "*", metastore.OpRead, allow),
	})
	cases := []struct {
		principal, host string
		op              metastore.ACLOperation
		rt              metastore.ACLResourceType
		name            string
		want            Result
	}{
		{"User:alice", "1.2.3.4", metastore.OpRead, topic, "orders", Allowed},
		{"User:alice", "1.2.3.4", metastore.OpDescribe, topic, "orders", Allowed}, // READ implies DESCRIBE
		{"User:alice", "1.2.3.4", metastore.OpWrite, topic, "orders", Denied},
		{"User:bob", "1.2.3.4", metastore.OpRead, topic, "orders", Denied},
		{"User:bob", "1.2.3.4", metastore.OpWrite, topic, "pay.eu", Allowed},          // prefix
		{"User:bob", "1.2.3.4", metastore.OpWrite, topic, "pay.secret.x", Denied},     // DENY wins
		{"User:bob", "1.2.3.4", metastore.OpDescribe, topic, "pay.secret.x", Allowed}, // DENY WRITE implies nothing
		{"User:bob", "1.2.3.4", metastore.OpWrite, topic, "pay", Denied},              // shorter than the prefix
		{"User:carol", "1.2.3.4", metastore.OpDelete, topic, "anything", Allowed},     // ALL on *
		{"User:carol", "1.2.3.4", metastore.OpDescribe, topic, "audit", Denied},
		{"User:zed", "10.0.0.9", metastore.OpRead, topic, "audit", Allowed}, // User:* and host
		{"User:zed", "10.0.0.8", metastore.OpRead, topic, "audit", Denied},
		{"User:zed", "::ffff:10.0.0.9", metastore.OpRead, topic, "audit", Allowed},   // IPv4-mapped
		{"User:dave", "1.2.3.4", metastore.OpDescribeConfigs, topic, "cfg", Allowed}, // ALTER_CONFIGS implies
		{"User:dave", "1.2.3.4", metastore.OpDescribe, topic, "cfg", Denied},
		{"User:erin", "1.2.3.4", metastore.OpRead, topic, "logs", Denied},
		{"User:erin", "1.2.3.4", metastore.OpWrite, topic, "logs", Allowed},
		{"User:alice", "1.2.3.4", metastore.OpRead, group, "g1", Allowed}, // empty prefix
		{"User:alice", "1.2.3.4", metastore.OpAlter, cluster, ClusterName, NoACL},
	}
	for _, c := range cases {
		if got := m.Authorize(c.principal, netip.MustParseAddr(c.host), c.op, c.rt, c.name); got != c.want {
			t.Errorf("Authorize(%s@%s %s %s:%s) = %v, want %v", c.principal, c.host, OperationName(c.op), ResourceTypeName(c.rt), c.name, got, c.want)
		}
	}
	if !m.NeedsHost() {
		t.Error("NeedsHost = false with a host-specific binding")
	}
}

func TestAuthorizeAny(t *testing.T) {
	m := NewMatcher([]Binding{
		bind(topic, lit, "a", "User:alice", "*", metastore.OpWrite, allow),
		bind(topic, pre, "b", "User:bob", "*", metastore.OpWrite, allow),
		bind(topic, pre, "", "User:bob", "*", metastore.OpWrite, deny),
		bind(topic, lit, "c", "User:carol", "*", metastore.OpWrite, allow),
		bind(topic, lit, "c", "User:carol", "*", metastore.OpWrite, deny),
		bind(topic, lit, "d", "User:dave", "*", metastore.OpRead, allow),
	})
	for principal, want := range map[string]Result{"User:alice": Allowed, "User:bob": Denied, "User:carol": Denied, "User:dave": Denied} {
		if got := m.AuthorizeAny(principal, someIP, metastore.OpWrite, topic); got != want {
			t.Errorf("AuthorizeAny(%s, WRITE, TOPIC) = %v, want %v", principal, got, want)
		}
	}
	if got := m.AuthorizeAny("User:alice", someIP, metastore.OpWrite, group); got != NoACL {
		t.Errorf("AuthorizeAny on a type without bindings = %v, want NoACL", got)
	}
}

type fakeStore []Binding

func (s *fakeStore) ACLs(context.Context, metastore.ACLFilter) ([]metastore.ACL, error) {
	return *s, nil
}

func TestAuthorizer(t *testing.T) {
	st := &fakeStore{}
	supers, err := ParseSuperUsers("User:admin; User:ops;")
	if err != nil || len(supers) != 2 {
		t.Fatalf("ParseSuperUsers = %v, %v", supers, err)
	}
	a := New(Config{SuperUsers: supers}, st)
	if a.Authorize("User:alice", someIP, metastore.OpRead, topic, "t") || !a.Authorize("User:ops", someIP, metastore.OpRead, topic, "t") {
		t.Fatal("before loading: want only super users allowed")
	}
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.Authorize("User:alice", someIP, metastore.OpRead, topic, "t") {
		t.Fatal("no ACL found, allow.everyone.if.no.acl.found=false: want denied")
	}
	b := New(Config{AllowIfNoACL: true}, st)
	*st = []Binding{bind(topic, lit, "t", "User:bob", "*", metastore.OpRead, allow)}
	if err := b.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !b.Authorize("User:alice", someIP, metastore.OpRead, topic, "other") {
		t.Error("allow.everyone.if.no.acl.found: a topic with no ACL is allowed")
	}
	if b.Authorize("User:alice", someIP, metastore.OpRead, topic, "t") {
		t.Error("allow.everyone.if.no.acl.found: a topic with ACLs for others is denied")
	}
	if _, err := ParseSuperUsers("admin"); err == nil {
		t.Error("ParseSuperUsers(admin) should fail")
	}
}

func TestNames(t *testing.T) {
	for _, s := range []string{"read", "DESCRIBE_CONFIGS", "idempotent-write", "all"} {
		op, err := ParseOperation(s)
		if err != nil || op == 0 {
			t.Errorf("ParseOperation(%s) = %v, %v", s, op, err)
		}
	}
	if rt, err := ParseResourceType("transactional-id"); err != nil || rt != metastore.ResourceTransactionalID {
		t.Errorf("ParseResourceType = %v, %v", rt, err)
	}
	if _, err := ParseOperation("fly"); err == nil {
		t.Error("ParseOperation(fly) should fail")
	}
}

// BenchmarkAuthorize is the cost of the checks one produce or fetch
// request of one topic makes, against a realistic set of bindings: many
// literal topic bindings, some prefixes, a wildcard.
func BenchmarkAuthorize(b *testing.B) {
	var bs []Binding
	for i := range 1000 {
		bs = append(bs, bind(topic, lit, fmt.Sprintf("topic-%d", i), fmt.Sprintf("User:u%d", i%50), "*", metastore.OpWrite, allow))
		bs = append(bs, bind(topic, lit, fmt.Sprintf("topic-%d", i), fmt.Sprintf("User:u%d", i%50), "*", metastore.OpRead, allow))
	}
	for i := range 20 {
		bs = append(bs, bind(topic, pre, fmt.Sprintf("team%d.", i), "User:u7", "*", metastore.OpAll, allow))
	}
	bs = append(bs, bind(topic, lit, "*", "User:ops", "*", metastore.OpDescribe, allow))
	a := New(Config{SuperUsers: []string{"User:admin"}}, &fakeStore{})
	*a.store.(*fakeStore) = bs
	if err := a.Reload(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, principal, topic string
		op                     metastore.ACLOperation
		want                   bool
	}{
		{"produce", "User:u7", "topic-507", metastore.OpWrite, true},
		{"fetch", "User:u7", "topic-507", metastore.OpRead, true},
		{"prefixed", "User:u7", "team3.orders", metastore.OpWrite, true},
		{"denied", "User:u8", "topic-507", metastore.OpWrite, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if a.Authorize(c.principal, someIP, c.op, topic, c.topic) != c.want {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}

// TestAuthorizeDoesNotAllocate: the hot-path check allocates nothing,
// literal, prefixed or denied.
func TestAuthorizeDoesNotAllocate(t *testing.T) {
	a := New(Config{SuperUsers: []string{"User:admin"}}, &fakeStore{
		bind(topic, lit, "orders", "User:alice", "*", metastore.OpWrite, allow),
		bind(topic, pre, "team.", "User:alice", "10.0.0.1", metastore.OpRead, allow),
		bind(topic, lit, "*", "User:bob", "*", metastore.OpAll, deny),
	})
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(100, func() {
		a.Authorize("User:alice", netip.MustParseAddr("10.0.0.1"), metastore.OpWrite, topic, "orders")
		a.Authorize("User:alice", netip.MustParseAddr("::ffff:10.0.0.1"), metastore.OpRead, topic, "team.x")
		a.Authorize("User:bob", someIP, metastore.OpRead, topic, "orders")
		a.AuthorizeAny("User:alice", someIP, metastore.OpWrite, topic)
	})
	if n != 0 {
		t.Fatalf("Authorize allocates %v times per round", n)
	}
}
