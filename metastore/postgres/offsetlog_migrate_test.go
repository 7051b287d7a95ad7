package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/siltstream/silt/internal/testenv"
	"github.com/siltstream/silt/metastore"
)

// Offsets and groups saved before migration 0012 get their partition of
// __consumer_offsets and sequence numbers when it is applied, and later
// commits continue after them.
func TestMigrationNumbersEarlierOffsets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url, conn := databaseAt(ctx, t, 11)
	// my-group is in partition 12, hello in 22.
	if _, err := conn.Exec(ctx, `INSERT INTO consumer_offsets (group_id, topic, partition, "offset", leader_epoch, metadata) VALUES
		('my-group', 'b', 0, 5, -1, ''), ('my-group', 'a', 1, 7, 2, 'm'), ('hello', 'a', 0, 9, -1, '')`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO consumer_groups (group_id, generation, protocol_type, protocol, leader, state, member_ids, members)
		VALUES ('my-group', 4, 'consumer', 'range', '', 'Empty', '{}', '[]')`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	if err := Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for part, want := range map[int32][]string{12: {"my-group a 1 7", "my-group b 0 5", "my-group group 4 Empty"}, 22: {"hello a 0 9"}, 0: nil} {
		end, err := s.OffsetLogEnd(ctx, part)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.OffsetLog(ctx, part, 0, end, 10, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if end != int64(len(want)) || len(rows) != len(want) {
			t.Fatalf("partition %d: end %d, %d rows; want %d", part, end, len(rows), len(want))
		}
		for i, r := range rows {
			got := fmt.Sprintf("%s %s %d %d", r.Group, r.Topic, r.Partition, r.Offset)
			if g := r.GroupMetadata; g != nil {
				got = fmt.Sprintf("%s group %d %s", g.ID, g.Generation, g.State)
			}
			if r.Seq != int64(i) || got != want[i] || r.CommitTimeMs <= 0 {
				t.Fatalf("partition %d row %d: %d %q at %d, want %d %q", part, i, r.Seq, got, r.CommitTimeMs, i, want[i])
			}
		}
	}
	if err := s.CommitOffsets(ctx, "my-group", []metastore.CommittedOffset{{Topic: "c", Offset: 1}}); err != nil {
		t.Fatal(err)
	}
	if rows, err := s.OffsetLog(ctx, 12, 0, 10, 10, 1<<20); err != nil || len(rows) != 4 || rows[3].Seq != 3 || rows[3].Topic != "c" {
		t.Fatalf("after a commit: %+v, %v", rows, err)
	}
}

// databaseAt returns a new database migrated up to and including schema
// version last, and a connection to it, as a test of a later migration
// starts from.
func databaseAt(ctx context.Context, t *testing.T, last int) (url string, conn *pgx.Conn) {
	t.Helper()
	url = testenv.Postgres(t).NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Version > last {
			break
		}
		if _, err := conn.Exec(ctx, m.SQL); err != nil {
			t.Fatalf("apply %s: %v", m.Name, err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	return url, conn
}
