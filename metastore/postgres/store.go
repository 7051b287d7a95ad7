package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/siltstream/silt/metastore"
)

// Store is the Postgres metastore.Store.
type Store struct {
	pool *pgxpool.Pool

	watchMu     sync.Mutex // guards the keepalive settings
	pingEvery   time.Duration
	pingTimeout time.Duration
}

var _ metastore.Store = (*Store)(nil)

// ErrSchemaOutdated is returned by Open when the database has not been
// migrated to the version this build needs; run Migrate (`silt migrate`).
var ErrSchemaOutdated = errors.New("metastore schema is missing or outdated")

// Open connects to the database at url (a postgres:// URL or key=value DSN;
// pool settings such as pool_max_conns are accepted). It does not migrate:
// if the schema is older than LatestVersion it fails with ErrSchemaOutdated.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse postgres url: %w", err)
	}
	// TCP keepalive, so the kernel gives up on a dead peer in about half a
	// minute rather than the default two hours; WatchCommits also pings
	// its idle connection itself (a middlebox can keep TCP alive for a
	// server that no longer answers).
	dialer := &net.Dialer{
		Timeout:         cfg.ConnConfig.ConnectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3},
	}
	cfg.ConnConfig.DialFunc = dialer.DialContext
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	s := &Store{pool: pool}
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
			err = fmt.Errorf("%w: no schema_migrations table; run silt migrate", ErrSchemaOutdated)
		}
		pool.Close()
		return nil, fmt.Errorf("open postgres metastore: %w", err)
	}
	if want := LatestVersion(); v < want {
		pool.Close()
		return nil, fmt.Errorf("open postgres metastore: %w: version %d, this build needs %d; run silt migrate", ErrSchemaOutdated, v, want)
	}
	return s, nil
}

// Pool exposes the connection pool, for tests and diagnostics.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close implements metastore.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

func uuidArg(id metastore.TopicID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && (constraint == "" || pgErr.ConstraintName == constraint)
}

// SchemaVersion implements metastore.Store.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int32
	if err := s.pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v), nil
}
