package postgres_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/internal/testcerts"
	"github.com/siltstream/silt/internal/testenv"
	"github.com/siltstream/silt/metastore/postgres"
)

// TestVerifyFullTLS: a metastore URL with sslmode=verify-full and
// sslrootcert connects over TLS to a server whose certificate that CA
// signed, and refuses one signed by another CA. (pgx reads the libpq
// parameters; this pins that the store passes them through.)
func TestVerifyFullTLS(t *testing.T) {
	srv := testenv.Postgres(t)
	plain := srv.NewDatabase(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) }) // after the reset below

	// The server reads its certificate as its own user: put the files in a
	// directory it owns, as it owns its data directory.
	var dataDir string
	if err := admin.QueryRow(ctx, "SHOW data_directory").Scan(&dataDir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	ca := testcerts.NewCA(t, "postgres CA")
	leaf := ca.Server(t, "postgres")
	// Not t.TempDir(): its parent is private to this user, and the server
	// runs as another.
	dir, err := os.MkdirTemp("", "silt-pg-tls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	leaf.WriteTo(t, certFile, keyFile)
	for _, p := range []string{dir, certFile, keyFile} {
		if err := os.Chown(p, int(st.Uid), int(st.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	enable := []string{
		"ALTER SYSTEM SET ssl_cert_file = '" + certFile + "'",
		"ALTER SYSTEM SET ssl_key_file = '" + keyFile + "'",
		"ALTER SYSTEM SET ssl = on",
		"SELECT pg_reload_conf()",
	}
	for _, q := range enable {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		for _, q := range []string{"ALTER SYSTEM RESET ssl", "ALTER SYSTEM RESET ssl_cert_file", "ALTER SYSTEM RESET ssl_key_file", "SELECT pg_reload_conf()"} {
			if _, err := admin.Exec(context.Background(), q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})

	withTLS := func(rootCert string) string {
		u, err := url.Parse(plain)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("sslmode", "verify-full")
		q.Set("sslrootcert", rootCert)
		u.RawQuery = q.Encode()
		return u.String()
	}
	good := withTLS(ca.CertFile)
	poll.Until(t, "the server to serve TLS after reloading its configuration", func() bool {
		return postgres.Migrate(ctx, good) == nil // migrations go through the same URL
	})
	st2, err := postgres.Open(ctx, good)
	if err != nil {
		t.Fatalf("open over TLS: %v", err)
	}
	st2.Close()
	conn, err := pgx.Connect(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ssl bool
	if err := conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("connection with sslmode=verify-full is not TLS: %v %v", ssl, err)
	}

	other := testcerts.NewCA(t, "another CA")
	if s, err := postgres.Open(ctx, withTLS(other.CertFile)); err == nil {
		s.Close()
		t.Fatal("verify-full accepted a server certificate from a CA it does not trust")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("error with the wrong CA does not mention the certificate: %v", err)
	}
}
