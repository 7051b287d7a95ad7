package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/siltstream/silt/metastore/internal/migrations"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// embeddedMigrations returns the embedded migrations in version order.
func embeddedMigrations() ([]migrations.Migration, error) {
	return migrations.Load(migrationFS, "migrations")
}

// LatestVersion is the version of the newest embedded migration.
func LatestVersion() int {
	ms, err := embeddedMigrations()
	if err != nil {
		return 0
	}
	return migrations.Latest(ms)
}

// Migrate opens the database at path (creating it), applies any missing
// migrations and closes it. Open does the same, so calling Migrate is only
// needed to migrate without serving.
func Migrate(ctx context.Context, path string) error {
	s, err := Open(ctx, path)
	if err != nil {
		return err
	}
	return s.Close()
}

// migrate applies missing migrations on the write connection. Each runs in
// a BEGIN IMMEDIATE transaction that re-reads schema_migrations, so two
// processes opening a new file at once apply each migration once.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := embeddedMigrations()
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		err := inTx(ctx, db, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			if after := afterMigration[m.Version]; after != nil {
				if err := after(ctx, tx); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.Version, m.Name, now())
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
	}
	return nil
}
