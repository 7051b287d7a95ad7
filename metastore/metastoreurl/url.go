package metastoreurl

import (
	"context"
	"fmt"
	"strings"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/postgres"
	"github.com/siltstream/silt/metastore/sqlite"
)

// Open opens the store url names. A postgres database must already be
// migrated (see Migrate); a sqlite file is created and migrated by Open.
func Open(ctx context.Context, url string) (metastore.Store, error) {
	kind, target, err := parse(url)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "postgres":
		return postgres.Open(ctx, target)
	default:
		return sqlite.Open(ctx, target)
	}
}

// Migrate brings the store url names to the schema this build needs:
// postgres migrates under an advisory lock (safe from many agents at once);
// sqlite opens, migrates and closes the file.
func Migrate(ctx context.Context, url string) error {
	kind, target, err := parse(url)
	if err != nil {
		return err
	}
	switch kind {
	case "postgres":
		return postgres.Migrate(ctx, target)
	default:
		return sqlite.Migrate(ctx, target)
	}
}

// LatestVersion is the schema version Migrate brings the store url names
// to: the newest migration this build embeds for that kind of store.
func LatestVersion(url string) (int, error) {
	kind, _, err := parse(url)
	if err != nil {
		return 0, err
	}
	switch kind {
	case "postgres":
		return postgres.LatestVersion(), nil
	default:
		return sqlite.LatestVersion(), nil
	}
}

// parse splits a metastore URL into a store kind and what that store's Open
// takes: the URL itself for postgres, a file path for sqlite.
func parse(url string) (kind, target string, err error) {
	scheme, rest, ok := strings.Cut(url, ":")
	if !ok {
		return "", "", fmt.Errorf("metastore url %q: no scheme; want postgres://… or sqlite:///path/meta.db", url)
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		if !strings.HasPrefix(rest, "//") {
			return "", "", fmt.Errorf("metastore url %q: want postgres://user@host:port/database", redact(url))
		}
		return "postgres", url, nil
	case "sqlite", "sqlite3":
		// sqlite:///abs/path → /abs/path; sqlite://rel/path → rel/path;
		// sqlite:path → path.
		path := strings.TrimPrefix(rest, "//")
		if path == "" {
			return "", "", fmt.Errorf("metastore url %q: no file path; want sqlite:///path/meta.db", url)
		}
		if strings.ContainsAny(path, "?#") {
			return "", "", fmt.Errorf("metastore url %q: sqlite urls take no query or fragment", url)
		}
		return "sqlite", path, nil
	default:
		return "", "", fmt.Errorf("metastore url %q: unsupported scheme %q; want postgres:// or sqlite://", redact(url), scheme)
	}
}

// redact hides a password in url, for error messages.
func redact(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return url
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return url
}
