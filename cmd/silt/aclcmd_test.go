package main

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/cache"
	"github.com/siltstream/silt/metastore/sqlite"
	"github.com/siltstream/silt/objectstore/mem"
)

// startACLAgent runs an agent in this process with authorizer=acl and the
// anonymous principal (the CLI's, on PLAINTEXT) as super user.
func startACLAgent(t *testing.T) string {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cb, err := cache.New(mem.New(), cache.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cb.Stop)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.DefaultConfig()
	cfg.Listen = ln.Addr().String()
	cfg.Authorizer, cfg.SuperUsers = agent.AuthorizerACL, []string{"User:ANONYMOUS"}
	a, err := agent.New(cfg, cb, store)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}

// TestACLCommands drives silt acl create, list and delete against a real
// agent and checks each effect through the next command.
func TestACLCommands(t *testing.T) {
	clearSiltEnv(t)
	addr := startACLAgent(t)

	out := cli(t, addr, "acl", "create", "--principal", "User:alice", "--principal", "User:bob",
		"--operation", "read,describe", "--topic", "orders")
	if n := strings.Count(out, "created acl"); n != 4 {
		t.Fatalf("create: %d acls created, want 4 (2 principals × 2 operations):\n%s", n, out)
	}
	cli(t, addr, "acl", "create", "--principal", "User:etl", "--operation", "write", "--topic", "etl.", "--pattern", "prefixed")
	cli(t, addr, "acl", "create", "--principal", "User:*", "--operation", "all", "--group", "*", "--permission", "deny")
	if _, errOut, code := runCLI(t, "acl", "create", "--principal", "alice", "--operation", "read", "--topic", "x", "--brokers", addr); code != 2 || !strings.Contains(errOut, "Type:Name") {
		t.Errorf("create with a bad principal: exit %d, stderr %q", code, errOut)
	}

	out = cli(t, addr, "acl", "list")
	if row := tableRow(out, "TOPIC", "PREFIXED", "etl.", "User:etl", "*", "WRITE", "ALLOW"); row == nil {
		t.Errorf("list: no prefixed row for User:etl in\n%s", out)
	}
	if row := tableRow(out, "GROUP", "LITERAL", "*", "User:*", "*", "ALL", "DENY"); row == nil {
		t.Errorf("list: no deny row in\n%s", out)
	}
	if n := strings.Count(out, "\n"); n != 1+6 {
		t.Errorf("list: %d rows, want 6:\n%s", n-1, out)
	}
	// MATCH: every ACL that applies to topic etl.jobs.
	out = cli(t, addr, "acl", "list", "--topic", "etl.jobs", "--pattern", "match")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, "User:etl") {
		t.Errorf("list --pattern match for etl.jobs:\n%s", out)
	}

	out = cli(t, addr, "acl", "delete", "--principal", "User:bob")
	if !strings.Contains(out, "2 acl(s) deleted") {
		t.Errorf("delete --principal User:bob:\n%s", out)
	}
	out = cli(t, addr, "acl", "list", "--topic", "orders")
	if strings.Contains(out, "User:bob") || strings.Count(out, "User:alice") != 2 {
		t.Errorf("list after deleting bob's:\n%s", out)
	}
	if _, errOut, code := runCLI(t, "acl", "delete", "--brokers", addr); code != 2 || !strings.Contains(errOut, "--all") {
		t.Errorf("delete without a filter: exit %d, stderr %q", code, errOut)
	}
	out = cli(t, addr, "acl", "delete", "--all")
	if !strings.Contains(out, "4 acl(s) deleted") {
		t.Errorf("delete --all:\n%s", out)
	}
}
