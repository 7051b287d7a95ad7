package testenv

// Starting the services outside a test binary, for tools such as
// cmd/silt-bench: the same servers MinIO(t) and Postgres(t) start, but owned
// by the caller, who gets an explicit stop function instead of a cleanup
// that runs when testenv.Main returns.

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
)

// StartMinIO starts a MinIO server (building the pinned binary into
// <repo>/.bin first if it is missing; logf, if not nil, is told so) and
// returns it with a function that stops it and deletes its data. The
// working directory must be inside the repository.
//
// Do not call it concurrently with MinIO or Postgres in the same process.
func StartMinIO(logf func(format string, args ...any)) (*MinIOServer, func(), error) {
	var s *MinIOServer
	stop, err := startDetached(func() (err error) {
		s, err = startMinIO(logTB{logf: logf})
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return s, stop, nil
}

// StartPostgres starts a throwaway Postgres cluster and returns it with a
// function that stops it and deletes its data.
//
// Do not call it concurrently with MinIO or Postgres in the same process.
func StartPostgres() (*PostgresServer, func(), error) {
	var s *PostgresServer
	stop, err := startDetached(func() (err error) {
		s, err = startPostgres()
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return s, stop, nil
}

// CreateBucket creates bucket name on the server.
func (s *MinIOServer) CreateBucket(ctx context.Context, name string) error {
	if err := s.client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: MinIORegion}); err != nil {
		return fmt.Errorf("create MinIO bucket %s: %w", name, err)
	}
	return nil
}

// BucketURL returns the bucketurl URL of bucket name with key prefix:
// s3://<name>/<prefix>?region=us-east-1&endpoint=<Endpoint>&path_style=true.
func (s *MinIOServer) BucketURL(name, prefix string) string {
	q := url.Values{}
	q.Set("region", MinIORegion)
	q.Set("endpoint", s.Endpoint)
	q.Set("path_style", "true")
	return fmt.Sprintf("s3://%s/%s?%s", name, prefix, q.Encode())
}

var dbName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// CreateDatabase creates database name (lower-case letters, digits and
// underscores) and returns its URL.
func (s *PostgresServer) CreateDatabase(ctx context.Context, name string) (string, error) {
	if !dbName.MatchString(name) {
		return "", fmt.Errorf("create database %q: name must match %s", name, dbName)
	}
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.URL(name), nil
}

// startDetached runs start and takes back the cleanups it registered with
// atExit, so that they run when the caller says and not when Main returns.
func startDetached(start func() error) (stop func(), err error) {
	cleanupMu.Lock()
	n := len(cleanups)
	cleanupMu.Unlock()
	err = start()
	cleanupMu.Lock()
	var fns []func()
	if len(cleanups) > n {
		fns = append(fns, cleanups[n:]...)
		cleanups = cleanups[:n]
	}
	cleanupMu.Unlock()
	stop = func() {
		for i := len(fns) - 1; i >= 0; i-- {
			fns[i]()
		}
	}
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// logTB is the testing.TB the start functions are given outside a test.
// They only log through it (minioBinary says when it builds MinIO); any
// other method panics on the nil embedded interface, which would be a bug
// in this file, not a test failure.
type logTB struct {
	testing.TB
	logf func(format string, args ...any)
}

func (l logTB) Helper() {}

func (l logTB) Logf(format string, args ...any) {
	if l.logf != nil {
		l.logf(format, args...)
	}
}
