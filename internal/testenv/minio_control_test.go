package testenv

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func TestStoppableMinIO(t *testing.T) {
	s := NewStoppableMinIO(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.CreateBucket(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	body := []byte("survives a SIGKILL")
	if _, err := s.Client().PutObject(ctx, "kept", "obj", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	if _, err := s.Client().ListBuckets(short); err == nil {
		t.Fatal("list buckets succeeded while minio was killed")
	}
	s.Start(t)
	obj, err := s.Client().GetObject(ctx, "kept", "obj", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("after restart: %q, %v; want %q", got, err, body)
	}
}
