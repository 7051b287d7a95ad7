package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/siltstream/silt/metastore/internal/migrations"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLockKey is the pg_advisory_lock key that serializes Migrate calls
// ("silt" in ASCII).
const migrationLockKey = 0x73696c74

// embeddedMigrations returns the embedded migrations in version order.
func embeddedMigrations() ([]migrations.Migration, error) {
	return migrations.Load(migrationFS, "migrations")
}

// LatestVersion is the version of the newest embedded migration: the schema
// version this build needs.
func LatestVersion() int {
	ms, err := embeddedMigrations()
	if err != nil {
		return 0
	}
	return migrations.Latest(ms)
}

// Migrate applies every embedded migration the database at url lacks, each
// in its own transaction, recording it in schema_migrations. It holds a
// session advisory lock throughout, so concurrent calls (agents starting
// together) apply each migration once and all return nil.
func Migrate(ctx context.Context, url string) error {
	ms, err := embeddedMigrations()
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close(context.Background())

	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLockKey)); err != nil {
		return fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	// Closing the connection releases the lock too; unlocking explicitly
	// just frees it sooner.
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(migrationLockKey))

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	for _, v := range versions {
		applied[int(v)] = true
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// No arguments: pgx uses the simple protocol, which accepts a
			// file of several statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			if after := afterMigration[m.Version]; after != nil {
				if err := after(ctx, tx); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
	}
	return nil
}
