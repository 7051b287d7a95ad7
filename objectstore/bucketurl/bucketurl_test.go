package bucketurl_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siltstream/silt/internal/testenv"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/bucketurl"
	"github.com/siltstream/silt/objectstore/file"
	"github.com/siltstream/silt/objectstore/mem"
	"github.com/siltstream/silt/objectstore/objectstoretest"
	"github.com/siltstream/silt/objectstore/s3"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func open(t *testing.T, rawURL string) objectstore.Bucket {
	t.Helper()
	b, err := bucketurl.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatalf("Open(%s): %v", rawURL, err)
	}
	return b
}

func TestBucket(t *testing.T) {
	t.Run("mem-url", func(t *testing.T) {
		objectstoretest.Run(t, func(t *testing.T) objectstore.Bucket { return open(t, "mem://") })
	})
	t.Run("file-url", func(t *testing.T) {
		objectstoretest.Run(t, func(t *testing.T) objectstore.Bucket {
			return open(t, "file://"+filepath.Join(t.TempDir(), "new", "dir"))
		})
	})
	t.Run("s3-minio-url", func(t *testing.T) {
		objectstoretest.Run(t, func(t *testing.T) objectstore.Bucket {
			srv := testenv.MinIO(t)
			srv.SetEnv(t)
			_, u := srv.NewBucket(t)
			return open(t, u)
		})
	})
}

func TestDrivers(t *testing.T) {
	if _, ok := open(t, "mem://").(*mem.Bucket); !ok {
		t.Error("mem:// did not open a mem.Bucket")
	}
	dir := filepath.Join(t.TempDir(), "a", "b")
	fb, ok := open(t, "file://"+dir).(*file.Bucket)
	if !ok || fb.Dir() != dir {
		t.Errorf("file://%s opened %T", dir, fb)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("file:// did not create its directory: %v", err)
	}
}

func TestParseS3(t *testing.T) {
	cfg, err := bucketurl.ParseS3("s3://my-bucket/a/b/?region=eu-west-1&endpoint=http%3A%2F%2F127.0.0.1%3A9000&path_style=true&max_attempts=3")
	if err != nil {
		t.Fatal(err)
	}
	want := s3.Config{Bucket: "my-bucket", Prefix: "a/b", Region: "eu-west-1", Endpoint: "http://127.0.0.1:9000", PathStyle: true, MaxAttempts: 3}
	if cfg != want {
		t.Fatalf("ParseS3 = %+v, want %+v", cfg, want)
	}
	cfg, err = bucketurl.ParseS3("s3://plain")
	if err != nil || cfg != (s3.Config{Bucket: "plain"}) {
		t.Fatalf("ParseS3(s3://plain) = %+v, %v", cfg, err)
	}
}

func TestBadURLs(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"", "empty"},
		{"/var/lib/silt", "no scheme"},
		{"gs://bucket", `unsupported scheme "gs"`},
		{"s3://", "bucket name is missing"},
		{"s3:///prefix", "bucket name is missing"},
		{"s3://b?regoin=x", `unknown parameter "regoin"`},
		{"s3://b?path_style=maybe", `path_style="maybe"`},
		{"s3://b?max_attempts=0", "max_attempts"},
		{"s3://b?endpoint=127.0.0.1:9000", "not an http:// or https:// URL"},
		{"s3://b?region=a&region=b", "more than once"},
		{"s3://key:secret@b", "credentials do not belong in the URL"},
		{"s3://127.0.0.1:9000/b", "endpoint="},
		{"file://relative/dir", "file:///absolute/dir"},
		{"file:relative", "file:///absolute/dir"},
		{"file:///", "directory is missing"},
		{"file:///tmp/x?sync=no", "no parameters"},
		{"mem://name", "mem:// takes no"},
	} {
		_, err := bucketurl.Open(context.Background(), tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q): err = %v, want one mentioning %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q): error leaks the secret: %v", tc.url, err)
		}
	}
}

func TestOpenChecksS3Bucket(t *testing.T) {
	srv := testenv.MinIO(t)
	srv.SetEnv(t)
	_, u := srv.NewBucket(t)
	missing := strings.Replace(u, "s3://silt-test-", "s3://missing-", 1)
	_, err := bucketurl.Open(context.Background(), missing)
	if !objectstore.IsBucketNotFound(err) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open of a missing bucket: err = %v, want a bucket-does-not-exist error", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	_, err = bucketurl.Open(context.Background(), u)
	if !objectstore.IsAccessDenied(err) || !strings.Contains(err.Error(), "check credentials") {
		t.Errorf("Open with wrong credentials: err = %v, want an access-denied error", err)
	}
}
