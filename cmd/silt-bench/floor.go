package main

// The floor: what the object store does on its own, measured with minio-go
// (independently of Silt's own S3 driver), so the agent's figures can be
// read as a fraction of what the hardware and MinIO allow.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/url"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// floorResult is the raw PUT and GET figures.
type floorResult struct {
	put, get opStats
	// small is sequential PUTs of segment-sized objects, one worker: the
	// least an acknowledged produce can wait for besides the flush timer.
	small     opStats
	smallSize int
}

// opStats is one raw measurement: throughput and per-operation latency.
type opStats struct {
	bytes   int64
	ops     int
	elapsed time.Duration
	lat     latencies
}

func (s opStats) mbps() float64 { return mbPerSec(s.bytes, s.elapsed) }

func measureFloor(ctx context.Context, t *s3Target, o options) (floorResult, error) {
	u, err := url.Parse(t.endpoint)
	if err != nil || u.Host == "" {
		return floorResult{}, fmt.Errorf("bad S3 endpoint %q (want http://host:port)", t.endpoint)
	}
	cl, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(t.accessKey, t.secretKey, ""),
		Secure: u.Scheme == "https",
		Region: t.region,
	})
	if err != nil {
		return floorResult{}, fmt.Errorf("minio client: %w", err)
	}
	payload := make([]byte, o.objectSize)
	rand.Read(payload) // incompressible, like the produce payloads

	var (
		mu   sync.Mutex
		keys []string
	)
	defer func() { removeFloorObjects(t.bucket, cl, keys) }()

	var res floorResult
	res.put, err = runWorkers(ctx, o.floorWorkers, o.floorDuration, func(ctx context.Context, w, i int) (int64, error) {
		key := fmt.Sprintf("silt-bench-floor/w%d-%06d", w, i)
		_, err := cl.PutObject(ctx, t.bucket, key, bytes.NewReader(payload), int64(len(payload)),
			minio.PutObjectOptions{ContentType: "application/octet-stream"})
		if err != nil {
			return 0, fmt.Errorf("put %s: %w", key, err)
		}
		mu.Lock()
		keys = append(keys, key)
		mu.Unlock()
		return int64(len(payload)), nil
	})
	if err != nil {
		return res, err
	}
	res.get, err = runWorkers(ctx, o.floorWorkers, o.floorDuration, func(ctx context.Context, w, i int) (int64, error) {
		key := keys[(w*7919+i)%len(keys)]
		obj, err := cl.GetObject(ctx, t.bucket, key, minio.GetObjectOptions{})
		if err != nil {
			return 0, fmt.Errorf("get %s: %w", key, err)
		}
		defer obj.Close()
		n, err := io.Copy(io.Discard, obj)
		if err != nil {
			return n, fmt.Errorf("get %s: %w", key, err)
		}
		return n, nil
	})
	if err != nil {
		return res, err
	}
	small := make([]byte, o.smallObjectSize)
	rand.Read(small)
	res.smallSize = len(small)
	res.small, err = runWorkers(ctx, 1, o.floorDuration, func(ctx context.Context, _, i int) (int64, error) {
		key := fmt.Sprintf("silt-bench-floor/small-%06d", i)
		_, err := cl.PutObject(ctx, t.bucket, key, bytes.NewReader(small), int64(len(small)),
			minio.PutObjectOptions{ContentType: "application/octet-stream"})
		if err != nil {
			return 0, fmt.Errorf("put %s: %w", key, err)
		}
		mu.Lock()
		keys = append(keys, key)
		mu.Unlock()
		return int64(len(small)), nil
	})
	return res, err
}

// runWorkers runs op in n workers until d has passed, and reports the bytes
// moved over the time the whole run took (every operation started counts,
// so the last ones are waited for).
func runWorkers(ctx context.Context, n int, d time.Duration, op func(ctx context.Context, worker, i int) (int64, error)) (opStats, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		st    opStats
		first error
	)
	start := time.Now()
	end := start.Add(d)
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
				t0 := time.Now()
				b, err := op(ctx, w, i)
				took := time.Since(t0)
				mu.Lock()
				if err != nil {
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				st.bytes += b
				st.ops++
				st.lat = append(st.lat, took)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	if first == nil {
		first = ctx.Err()
	}
	return st, first
}

func removeFloorObjects(bucket string, cl *minio.Client, keys []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := make(chan minio.ObjectInfo, len(keys))
	for _, k := range keys {
		ch <- minio.ObjectInfo{Key: k}
	}
	close(ch)
	for range cl.RemoveObjects(ctx, bucket, ch, minio.RemoveObjectsOptions{}) {
	}
}
