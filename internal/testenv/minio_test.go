package testenv

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

func TestMinIO(t *testing.T) {
	s := MinIO(t)
	name, rawURL := s.NewBucket(t)
	name2, _ := s.NewBucket(t)
	if name == name2 {
		t.Fatalf("NewBucket returned %s twice", name)
	}
	if !strings.HasPrefix(rawURL, "s3://"+name+"/"+MinIOBucketPrefix+"?") || !strings.Contains(rawURL, "path_style=true") {
		t.Fatalf("NewBucket URL = %s", rawURL)
	}
	ctx := context.Background()
	c := s.Client()
	if _, err := c.PutObject(ctx, name, "k", bytes.NewReader([]byte("v")), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := c.GetObject(ctx, name, "k", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil || string(got) != "v" {
		t.Fatalf("read back %q, %v", got, err)
	}
	if len(s.Env()) < 3 {
		t.Fatalf("Env = %q", s.Env())
	}
}
