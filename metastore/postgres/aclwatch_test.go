package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/siltstream/silt/metastore"
)

// TestWatchCommitsReportsACLChanges: creating and deleting ACLs through
// one store is reported to a watcher on another, on the commit watch's
// connection; a delete that matches nothing is not.
func TestWatchCommitsReportsACLChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	writer, watcher := twoAgents(ctx, t)

	changed := make(chan struct{}, 8)
	ready := make(chan struct{})
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go watcher.WatchCommits(wctx, metastore.CommitHandler{
		Ready:       func(int64) error { close(ready); return nil },
		ACLsChanged: func() { changed <- struct{}{} },
	})
	<-ready
	wait := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("no notification of %s", what)
		}
	}

	b := metastore.ACL{ResourceType: metastore.ResourceTopic, ResourceName: "t", PatternType: metastore.PatternLiteral,
		Principal: "User:alice", Host: "*", Operation: metastore.OpRead, Permission: metastore.PermissionAllow}
	if err := writer.CreateACLs(ctx, []metastore.ACL{b}); err != nil {
		t.Fatal(err)
	}
	wait("a create")
	none := "nothing"
	if _, err := writer.DeleteACLs(ctx, []metastore.ACLFilter{{ResourceType: metastore.ResourceAny, ResourceName: &none,
		PatternType: metastore.PatternAny, Operation: metastore.OpAny, Permission: metastore.PermissionAny}}); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.DeleteACLs(ctx, []metastore.ACLFilter{{ResourceType: metastore.ResourceAny,
		PatternType: metastore.PatternAny, Operation: metastore.OpAny, Permission: metastore.PermissionAny}}); err != nil {
		t.Fatal(err)
	}
	wait("a delete")
	select {
	case <-changed:
		t.Fatal("a delete that matched nothing was notified")
	default:
	}
}

// TestWatchCommitsReportsQuotaChanges: altering client quotas through one
// store is reported to a watcher on another.
func TestWatchCommitsReportsQuotaChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	writer, watcher := twoAgents(ctx, t)

	changed := make(chan struct{}, 8)
	ready := make(chan struct{})
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go watcher.WatchCommits(wctx, metastore.CommitHandler{
		Ready:         func(int64) error { close(ready); return nil },
		QuotasChanged: func() { changed <- struct{}{} },
	})
	<-ready
	if err := writer.AlterClientQuotas(ctx, []metastore.QuotaAlteration{{
		Entity: metastore.QuotaEntity{ClientID: metastore.Named("app")}, Set: map[string]float64{"producer_byte_rate": 100},
	}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("no notification of a quota change")
	}
}
