package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/siltstream/silt/metastore"
)

// Store is the SQLite metastore.Store.
type Store struct {
	write *sql.DB // one connection: writers queue here, never SQLITE_BUSY
	read  *sql.DB
}

var _ metastore.Store = (*Store)(nil)

func now() int64 { return time.Now().UnixNano() }

// Open opens (creating if needed) the database file at path and migrates it.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.Contains(path, "?") {
		return nil, fmt.Errorf("open sqlite metastore: invalid path %q", path)
	}
	params := url.Values{}
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	params.Add("_pragma", "journal_mode(WAL)")
	params.Add("_pragma", "foreign_keys(1)")
	params.Set("_txlock", "immediate")
	dsn := path + "?" + params.Encode()

	write, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite metastore %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := migrateRetryingBusy(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite metastore %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", dsn)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite metastore %s: %w", path, err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	return &Store{write: write, read: read}, nil
}

// migrateRetryingBusy migrates, retrying while SQLite answers SQLITE_BUSY
// for up to the busy timeout. Processes opening a new file together race to
// switch it to WAL, and the losers' first statement can answer SQLITE_BUSY
// at once instead of waiting for busy_timeout (TestConcurrentOpen saw it
// about once in 300 opens).
func migrateRetryingBusy(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		err := migrate(ctx, db)
		var se interface{ Code() int }
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqliteBusy || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

const (
	busyTimeout = 10 * time.Second // the busy_timeout pragma
	sqliteBusy  = 5                // SQLITE_BUSY, the primary result code
)

// Close implements metastore.Store.
func (s *Store) Close() error {
	return errors.Join(s.read.Close(), s.write.Close())
}

// inTx runs fn in a transaction (BEGIN IMMEDIATE, from the DSN).
func inTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

type scanner interface{ Scan(dest ...any) error }

// SchemaVersion implements metastore.Store.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.read.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
