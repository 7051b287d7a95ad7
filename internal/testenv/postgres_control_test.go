package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestStoppablePostgres(t *testing.T) {
	s := NewStoppablePostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	s.Stop(t)
	if err := exec("SELECT 1"); err == nil {
		t.Fatal("query succeeded while postgres was stopped")
	}
	s.Start(t)
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var x int
	if err := conn.QueryRow(ctx, "SELECT x FROM kept").Scan(&x); err != nil || x != 7 {
		t.Fatalf("after restart: x = %d, %v; want 7", x, err)
	}

	// An immediate stop (a crash) loses nothing committed either.
	if _, err := conn.Exec(ctx, "INSERT INTO kept VALUES (8)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	s.StopImmediate(t)
	if err := exec("SELECT 1"); err == nil {
		t.Fatal("query succeeded after an immediate stop")
	}
	s.Start(t)
	if err := exec("DO $$ BEGIN IF (SELECT count(*) FROM kept) <> 2 THEN RAISE 'lost a row'; END IF; END $$"); err != nil {
		t.Fatalf("after crash recovery: %v", err)
	}
}
