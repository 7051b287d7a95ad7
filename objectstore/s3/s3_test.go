package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/siltstream/silt/internal/testenv"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/objectstoretest"
	"github.com/siltstream/silt/objectstore/s3"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// openMinIO returns a driver on a fresh MinIO bucket, with credentials in
// the environment as the default chain expects them.
func openMinIO(t *testing.T, prefix string) (*s3.Bucket, string, *testenv.MinIOServer) {
	t.Helper()
	srv := testenv.MinIO(t)
	srv.SetEnv(t)
	name, _ := srv.NewBucket(t)
	b, err := s3.New(context.Background(), s3.Config{
		Bucket:    name,
		Prefix:    prefix,
		Region:    testenv.MinIORegion,
		Endpoint:  srv.Endpoint,
		PathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CheckBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b, name, srv
}

func TestBucket(t *testing.T) {
	t.Run("s3-minio", func(t *testing.T) {
		objectstoretest.Run(t, func(t *testing.T) objectstore.Bucket {
			b, _, _ := openMinIO(t, "")
			return b
		})
	})
	t.Run("s3-minio-prefixed", func(t *testing.T) {
		objectstoretest.Run(t, func(t *testing.T) objectstore.Bucket {
			b, _, _ := openMinIO(t, "/cluster-a/")
			return b
		})
	})
}

// TestPrefix checks, with minio-go rather than our driver, where objects land.
func TestPrefix(t *testing.T) {
	b, name, srv := openMinIO(t, "cluster-a")
	ctx := context.Background()
	if err := b.Put(ctx, "seg/1", []byte("data")); err != nil {
		t.Fatal(err)
	}
	c := srv.Client()
	if _, err := c.StatObject(ctx, name, "cluster-a/seg/1", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("object not stored under the prefix: %v", err)
	}
	// Objects outside the prefix are invisible.
	if _, err := c.PutObject(ctx, name, "other/x", bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, name, "cluster-ab/y", bytes.NewReader([]byte("y")), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := b.List(ctx, "", func(a objectstore.Attrs) error { keys = append(keys, a.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "seg/1" {
		t.Fatalf("List = %q, want [seg/1]", keys)
	}
	if _, err := b.Get(ctx, "other/x", 0, -1); !objectstore.IsNotFound(err) {
		t.Fatalf("Get outside the prefix: err = %v, want not found", err)
	}
}

func TestMissingBucket(t *testing.T) {
	srv := testenv.MinIO(t)
	srv.SetEnv(t)
	b, err := s3.New(context.Background(), s3.Config{
		Bucket: "no-such-bucket-here", Endpoint: srv.Endpoint, PathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := `bucket "no-such-bucket-here" does not exist`
	err = b.CheckBucket(ctx)
	t.Logf("CheckBucket on a missing bucket: %v", err)
	if !objectstore.IsBucketNotFound(err) || !strings.Contains(err.Error(), want) {
		t.Errorf("CheckBucket: err = %v, want IsBucketNotFound saying %s", err, want)
	}
	err = b.Put(ctx, "k", []byte("x"))
	if !objectstore.IsBucketNotFound(err) || !strings.Contains(err.Error(), want) {
		t.Errorf("Put: err = %v, want IsBucketNotFound saying %s", err, want)
	}
	_, err = b.Get(ctx, "k", 0, -1)
	if !objectstore.IsBucketNotFound(err) || objectstore.IsNotFound(err) {
		t.Errorf("Get: err = %v, want IsBucketNotFound and not IsNotFound", err)
	}
	err = b.List(ctx, "", func(objectstore.Attrs) error { return nil })
	if !objectstore.IsBucketNotFound(err) {
		t.Errorf("List: err = %v, want IsBucketNotFound", err)
	}
}

func TestWrongCredentials(t *testing.T) {
	srv := testenv.MinIO(t)
	name, _ := srv.NewBucket(t)
	srv.SetEnv(t)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	b, err := s3.New(context.Background(), s3.Config{
		Bucket: name, Endpoint: srv.Endpoint, PathStyle: true, MaxAttempts: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := fmt.Sprintf("access denied to bucket %q (check credentials", name)
	t.Logf("CheckBucket with a wrong secret: %v", b.CheckBucket(ctx))
	t.Logf("Put with a wrong secret: %v", b.Put(ctx, "k", []byte("x")))
	for op, err := range map[string]error{
		"CheckBucket": b.CheckBucket(ctx),
		"Put":         b.Put(ctx, "k", []byte("x")),
		"List":        b.List(ctx, "", func(objectstore.Attrs) error { return nil }),
		"Delete":      b.Delete(ctx, "k"),
	} {
		if !objectstore.IsAccessDenied(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want IsAccessDenied saying %s", op, err, want)
		}
	}
	_, err = b.Get(ctx, "k", 0, -1)
	if !objectstore.IsAccessDenied(err) || objectstore.IsNotFound(err) {
		t.Errorf("Get: err = %v, want IsAccessDenied", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "nobody-we-know")
	b2, err := s3.New(context.Background(), s3.Config{Bucket: name, Endpoint: srv.Endpoint, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Put(ctx, "k", []byte("x")); !objectstore.IsAccessDenied(err) {
		t.Errorf("Put with an unknown access key: err = %v, want IsAccessDenied", err)
	}
}

// fakeS3 fails its first failures requests with fail (503 SlowDown by
// default), then accepts everything.
type fakeS3 struct {
	failures atomic.Int64
	requests atomic.Int64
	stored   atomic.Value // []byte
	fail     func(w http.ResponseWriter)
}

func slowDown(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>1</RequestId></Error>`)
}

func internalError(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusInternalServerError)
	io.WriteString(w, `<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>`)
}

// resetConnection drops the connection without answering.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	body, _ := io.ReadAll(r.Body)
	if f.failures.Add(-1) >= 0 {
		if f.fail != nil {
			f.fail(w)
		} else {
			slowDown(w)
		}
		return
	}
	if r.Method == http.MethodPut {
		f.stored.Store(body)
	}
	w.Header().Set("ETag", `"abc"`)
	w.WriteHeader(http.StatusOK)
}

func newFake(t *testing.T, failures int64, cfg s3.Config) (*fakeS3, *s3.Bucket) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	f := &fakeS3{}
	f.failures.Store(failures)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg.Bucket, cfg.Endpoint, cfg.PathStyle = "fake", srv.URL, true
	b, err := s3.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return f, b
}

func TestRetriesSlowDown(t *testing.T) {
	f, b := newFake(t, 2, s3.Config{RetryBaseDelay: time.Millisecond, MaxRetryBackoff: 10 * time.Millisecond})
	if err := b.Put(context.Background(), "k", []byte("payload")); err != nil {
		t.Fatalf("Put after two SlowDowns: %v", err)
	}
	if n := f.requests.Load(); n != 3 {
		t.Fatalf("server saw %d requests, want 3 (two SlowDowns, one success)", n)
	}
	if got, _ := f.stored.Load().([]byte); string(got) != "payload" {
		t.Fatalf("retried Put sent body %q, want %q", got, "payload")
	}
}

func TestRetriesServerAndConnectionErrors(t *testing.T) {
	for name, fail := range map[string]func(http.ResponseWriter){
		"500 InternalError": internalError,
		"connection reset":  resetConnection,
		"slow response": func(w http.ResponseWriter) {
			time.Sleep(300 * time.Millisecond) // past ResponseHeaderTimeout
			slowDown(w)
		},
	} {
		t.Run(name, func(t *testing.T) {
			f, b := newFake(t, 2, s3.Config{
				RetryBaseDelay: time.Millisecond, MaxRetryBackoff: 10 * time.Millisecond,
				ResponseHeaderTimeout: 100 * time.Millisecond,
			})
			f.fail = fail
			if err := b.Put(context.Background(), "k", []byte("payload")); err != nil {
				t.Fatalf("Put after two failures: %v", err)
			}
			if got, _ := f.stored.Load().([]byte); string(got) != "payload" {
				t.Fatalf("stored %q after retries, want %q", got, "payload")
			}
		})
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	f, b := newFake(t, 1000, s3.Config{MaxAttempts: 4, RetryBaseDelay: time.Millisecond, MaxRetryBackoff: 5 * time.Millisecond})
	err := b.Put(context.Background(), "k", []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "SlowDown") {
		t.Fatalf("Put against a server that always throttles: err = %v, want the SlowDown error", err)
	}
	if n := f.requests.Load(); n != 4 {
		t.Fatalf("server saw %d requests, want MaxAttempts = 4", n)
	}
}

func TestCancelStopsRetrying(t *testing.T) {
	f, b := newFake(t, 1000, s3.Config{MaxAttempts: 100, RetryBaseDelay: 200 * time.Millisecond, MaxRetryBackoff: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := b.Put(ctx, "k", []byte("x"))
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put with an expiring context: err = %v, want context.DeadlineExceeded", err)
	}
	if elapsed > 2*time.Second {
		t.Fatalf("Put took %s after its context expired at 300ms", elapsed)
	}
	n := f.requests.Load()
	time.Sleep(300 * time.Millisecond) // would a retry still be in flight?
	if later := f.requests.Load(); later != n {
		t.Fatalf("requests continued after Put returned: %d then %d", n, later)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := s3.New(context.Background(), s3.Config{}); err == nil || !strings.Contains(err.Error(), "bucket name is empty") {
		t.Fatalf("New without a bucket: err = %v", err)
	}
}
