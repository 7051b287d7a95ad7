package metastoreurl

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siltstream/silt/internal/testenv"
	"github.com/siltstream/silt/metastore/postgres"
	"github.com/siltstream/silt/metastore/sqlite"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestParse(t *testing.T) {
	cases := []struct {
		url, kind, target string
	}{
		{"postgres://silt@db:5432/silt", "postgres", "postgres://silt@db:5432/silt"},
		{"postgresql://silt@db/silt?sslmode=disable", "postgres", "postgresql://silt@db/silt?sslmode=disable"},
		{"sqlite:///var/lib/silt/meta.db", "sqlite", "/var/lib/silt/meta.db"},
		{"sqlite://silt-data/meta.db", "sqlite", "silt-data/meta.db"},
		{"sqlite:meta.db", "sqlite", "meta.db"},
	}
	for _, c := range cases {
		kind, target, err := parse(c.url)
		if err != nil || kind != c.kind || target != c.target {
			t.Errorf("parse(%q) = %q, %q, %v; want %q, %q", c.url, kind, target, err, c.kind, c.target)
		}
	}
	for _, bad := range []string{"", "meta.db", "mysql://x/y", "sqlite://", "sqlite:", "sqlite:///a.db?mode=ro", "postgres:silt", "postgres:secret"} {
		if _, _, err := parse(bad); err == nil {
			t.Errorf("parse(%q) succeeded, want an error", bad)
		}
	}
	_, _, err := parse("mysql://u:hunter2@h/db")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error for a url with a password = %v; want it without the password", err)
	}
}

func TestLatestVersion(t *testing.T) {
	cases := []struct {
		url  string
		want int
	}{
		{"postgres://silt@db:5432/silt", postgres.LatestVersion()},
		{"POSTGRESQL://silt@db/silt", postgres.LatestVersion()},
		{"sqlite:///var/lib/silt/meta.db", sqlite.LatestVersion()},
		{"sqlite3:meta.db", sqlite.LatestVersion()},
	}
	for _, c := range cases {
		if got, err := LatestVersion(c.url); err != nil || got != c.want {
			t.Errorf("LatestVersion(%q) = %d, %v; want %d", c.url, got, err, c.want)
		}
	}
	if _, err := LatestVersion("mysql://x/y"); err == nil {
		t.Error("LatestVersion of an unsupported scheme succeeded, want an error")
	}
}

func TestOpenSQLite(t *testing.T) {
	ctx := context.Background()
	url := "sqlite://" + filepath.Join(t.TempDir(), "meta.db")
	if err := Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v <= 0 {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}
}

func TestOpenPostgres(t *testing.T) {
	ctx := context.Background()
	url := testenv.Postgres(t).NewDatabase(t)
	if _, err := Open(ctx, url); err == nil {
		t.Fatal("Open on an unmigrated postgres database succeeded")
	}
	if err := Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v <= 0 {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}
}
