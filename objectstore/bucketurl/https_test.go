package bucketurl_test

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siltstream/silt/objectstore/bucketurl"
)

// TestS3CustomCA: an https:// endpoint signed by a private CA is trusted
// with ca_file, and refused without it.
func TestS3CustomCA(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	heads := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead && r.URL.Path == "/b" {
			heads++
			return // HeadBucket: the bucket exists
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "s3://b?region=us-east-1&path_style=true&max_attempts=1&endpoint=" + url.QueryEscape(srv.URL)
	ctx := context.Background()

	if _, err := bucketurl.Open(ctx, base); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Open without ca_file = %v, want a certificate error", err)
	}
	b, err := bucketurl.Open(ctx, base+"&ca_file="+url.QueryEscape(caFile))
	if err != nil {
		t.Fatalf("Open with ca_file: %v", err)
	}
	b.Close()
	if heads != 1 {
		t.Errorf("the endpoint saw %d HeadBucket requests over TLS, want 1", heads)
	}

	if _, err := bucketurl.Open(ctx, "s3://b?endpoint=http://127.0.0.1:9000&ca_file=/x.pem"); err == nil || !strings.Contains(err.Error(), "https://") {
		t.Errorf("ca_file with an http endpoint: %v", err)
	}
	if _, err := bucketurl.Open(ctx, base+"&ca_file="+url.QueryEscape(filepath.Join(t.TempDir(), "missing.pem"))); err == nil || !strings.Contains(err.Error(), "CA file") {
		t.Errorf("missing ca_file: %v", err)
	}
}
