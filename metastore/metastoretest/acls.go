package metastoretest

import (
	"testing"

	"github.com/siltstream/silt/metastore"
)

func testACLs(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	str := func(v string) *string { return &v }
	all := metastore.ACLFilter{ResourceType: metastore.ResourceAny, PatternType: metastore.PatternAny, Operation: metastore.OpAny, Permission: metastore.PermissionAny}
	if got, err := s.ACLs(ctx, all); err != nil || len(got) != 0 {
		t.Fatalf("ACLs on an empty store = %v, %v; want none", got, err)
	}
	readOrders := metastore.ACL{ResourceType: metastore.ResourceTopic, ResourceName: "orders", PatternType: metastore.PatternLiteral,
		Principal: "User:alice", Host: "*", Operation: metastore.OpRead, Permission: metastore.PermissionAllow}
	writePrefix := metastore.ACL{ResourceType: metastore.ResourceTopic, ResourceName: "ord", PatternType: metastore.PatternPrefixed,
		Principal: "User:bob", Host: "10.0.0.1", Operation: metastore.OpWrite, Permission: metastore.PermissionAllow}
	denyAll := metastore.ACL{ResourceType: metastore.ResourceTopic, ResourceName: "*", PatternType: metastore.PatternLiteral,
		Principal: "User:*", Host: "*", Operation: metastore.OpAll, Permission: metastore.PermissionDeny}
	group := metastore.ACL{ResourceType: metastore.ResourceGroup, ResourceName: "orders", PatternType: metastore.PatternLiteral,
		Principal: "User:alice", Host: "*", Operation: metastore.OpRead, Permission: metastore.PermissionAllow}
	if err := s.CreateACLs(ctx, []metastore.ACL{readOrders, writePrefix, denyAll, group}); err != nil {
		t.Fatalf("CreateACLs: %v", err)
	}
	// Creating an existing binding again stores it once.
	if err := s.CreateACLs(ctx, []metastore.ACL{readOrders}); err != nil {
		t.Fatalf("CreateACLs again: %v", err)
	}
	got, err := s.ACLs(ctx, all)
	if err != nil || len(got) != 4 {
		t.Fatalf("ACLs(all) = %v, %v; want the 4 created", got, err)
	}

	cases := []struct {
		name string
		f    metastore.ACLFilter
		want []metastore.ACL
	}{
		{"literal name", metastore.ACLFilter{ResourceType: metastore.ResourceTopic, ResourceName: str("orders"), PatternType: metastore.PatternLiteral, Operation: metastore.OpAny, Permission: metastore.PermissionAny},
			[]metastore.ACL{readOrders}},
		{"any pattern, name equal", metastore.ACLFilter{ResourceType: metastore.ResourceAny, ResourceName: str("orders"), PatternType: metastore.PatternAny, Operation: metastore.OpAny, Permission: metastore.PermissionAny},
			[]metastore.ACL{readOrders, group}},
		{"match applies to name", metastore.ACLFilter{ResourceType: metastore.ResourceTopic, ResourceName: str("orders"), PatternType: metastore.PatternMatch, Operation: metastore.OpAny, Permission: metastore.PermissionAny},
			[]metastore.ACL{denyAll, writePrefix, readOrders}},
		{"principal and host", metastore.ACLFilter{ResourceType: metastore.ResourceAny, PatternType: metastore.PatternAny, Principal: str("User:bob"), Host: str("10.0.0.1"), Operation: metastore.OpAny, Permission: metastore.PermissionAny},
			[]metastore.ACL{writePrefix}},
		{"deny only", metastore.ACLFilter{ResourceType: metastore.ResourceAny, PatternType: metastore.PatternAny, Operation: metastore.OpAny, Permission: metastore.PermissionDeny},
			[]metastore.ACL{denyAll}},
	}
	for _, c := range cases {
		got, err := s.ACLs(ctx, c.f)
		if err != nil || !sameACLs(got, c.want) {
			t.Errorf("ACLs(%s) = %v, %v; want %v", c.name, got, err, c.want)
		}
	}

	// Delete by two filters in one call; each reports what it matched.
	res, err := s.DeleteACLs(ctx, []metastore.ACLFilter{
		{ResourceType: metastore.ResourceTopic, ResourceName: str("orders"), PatternType: metastore.PatternLiteral, Operation: metastore.OpAny, Permission: metastore.PermissionAny},
		{ResourceType: metastore.ResourceGroup, PatternType: metastore.PatternAny, Operation: metastore.OpAny, Permission: metastore.PermissionAny},
		{ResourceType: metastore.ResourceCluster, PatternType: metastore.PatternAny, Operation: metastore.OpAny, Permission: metastore.PermissionAny},
	})
	if err != nil || len(res) != 3 || !sameACLs(res[0], []metastore.ACL{readOrders}) || !sameACLs(res[1], []metastore.ACL{group}) || len(res[2]) != 0 {
		t.Fatalf("DeleteACLs = %v, %v; want [[readOrders] [group] []]", res, err)
	}
	got, err = s.ACLs(ctx, all)
	if err != nil || !sameACLs(got, []metastore.ACL{denyAll, writePrefix}) {
		t.Fatalf("ACLs after delete = %v, %v; want the prefixed write and the deny", got, err)
	}
}

// sameACLs compares as sets: the suite does not pin the order.
func sameACLs(got, want []metastore.ACL) bool {
	if len(got) != len(want) {
		return false
	}
	seen := make(map[metastore.ACL]int)
	for _, b := range got {
		seen[b]++
	}
	for _, b := range want {
		seen[b]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}
