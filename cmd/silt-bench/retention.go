package main

// The retention run (--retention-duration): does retention hold the bucket
// flat? A topic with retention.ms (then one with retention.bytes) takes a
// steady produce rate of incompressible records while a consumer reads it
// from the earliest offset all along. Every few seconds the run lists the
// bucket with its own S3 client (not Silt's driver) and asks for the
// topic's earliest offsets. Once retention + compaction.interval +
// gc.grace have passed, the bucket's bytes should stop growing and stay
// within 1.3× of what was written in that window.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// retentionSample is one look at the bucket and the topic.
type retentionSample struct {
	at       time.Duration // since the produce started
	objects  int
	bytes    int64 // the bucket's bytes, listed
	written  int64 // bytes acknowledged so far
	earliest int64 // sum over partitions of ListOffsets earliest
}

// retentionRun is one topic's run.
type retentionRun struct {
	what       string // "retention.ms=60000", …
	window     time.Duration
	rate       float64 // MB/s acknowledged over the run
	samples    []retentionSample
	consumed   int64
	resets     int   // forward jumps of the consumer's offsets (the resets Kafka clients do below the log start)
	fetchErrs  int   // fetch errors other than OFFSET_OUT_OF_RANGE
	outOfRange int   // OFFSET_OUT_OF_RANGE fetch errors surfaced to the application
	plateauMax int64 // the bucket's largest listed bytes after the window
	plateauAt  time.Duration
	bound      int64 // 1.3 × rate × window
}

func (r retentionRun) verdict() string {
	if r.plateauAt == 0 {
		return "no sample after the window: run longer"
	}
	if r.plateauMax <= r.bound {
		return fmt.Sprintf("held: at most %s after %s, bound %s (1.3 × rate × window)", sizeString64(r.plateauMax), r.plateauAt.Round(time.Second), sizeString64(r.bound))
	}
	return fmt.Sprintf("NOT held: %s after %s, above the bound %s", sizeString64(r.plateauMax), r.plateauAt.Round(time.Second), sizeString64(r.bound))
}

// runRetention measures retention.ms, then retention.bytes, each for
// o.retentionDur, and prints what it saw.
func runRetention(ctx context.Context, o options, env *benchEnv) error {
	if env.mio == nil {
		return errors.New("--retention-duration needs the MinIO this run starts (not --brokers): it lists the bucket")
	}
	window := o.retentionWindow + o.lifecycleInterval + o.gcGrace
	perPartition := int64(o.retentionRate * 1e6 * o.retentionWindow.Seconds() / float64(o.retentionPartitions))
	runs := []struct {
		what   string
		config map[string]*string
	}{
		{fmt.Sprintf("retention.ms=%d", o.retentionWindow.Milliseconds()), map[string]*string{
			"retention.ms": kadm.StringPtr(strconv.FormatInt(o.retentionWindow.Milliseconds(), 10))}},
		{fmt.Sprintf("retention.bytes=%d per partition (%s of writes)", perPartition, o.retentionWindow), map[string]*string{
			"retention.bytes": kadm.StringPtr(strconv.FormatInt(perPartition, 10)), "retention.ms": kadm.StringPtr("-1")}},
	}
	fmt.Printf("retention: %d partitions, %.3g MB/s of incompressible %s records, %s per topic; agents: compaction.interval=%s gc.grace=%s compaction.segment.bytes=%s; window = retention + interval + grace = %s\n",
		o.retentionPartitions, o.retentionRate, sizeString(o.recordSize), o.retentionDur, o.lifecycleInterval, o.gcGrace, o.retentionSegment, window)
	for i, spec := range runs {
		topic := fmt.Sprintf("%s-retention-%d", o.topic, i)
		res, err := measureRetention(ctx, o, env, topic, spec.config, window)
		if err != nil {
			return fmt.Errorf("%s: %w", spec.what, err)
		}
		res.what = spec.what
		res.print()
		// The next topic starts on an empty bucket: delete this one and
		// wait for its objects to go, so the listing is the next one's.
		if err := deleteTopic(ctx, env.brokers, topic); err != nil {
			return err
		}
		deadline := time.Now().Add(window + time.Minute)
		for time.Now().Before(deadline) {
			objs, _, err := listBucket(ctx, env)
			if err == nil && objs == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Second):
			}
		}
	}
	return nil
}

func (r retentionRun) print() {
	fmt.Printf("\n%s: %.3g MB/s acknowledged; window %s\n", r.what, r.rate, r.window)
	fmt.Printf("  %8s %10s %8s %12s %14s\n", "t", "written", "objects", "bucket", "earliest(sum)")
	for _, s := range r.samples {
		fmt.Printf("  %8s %10s %8d %12s %14d\n", s.at.Round(time.Second), sizeString64(s.written), s.objects, sizeString64(s.bytes), s.earliest)
	}
	fmt.Printf("  bucket after the window: %s\n", r.verdict())
	moved := len(r.samples) > 1 && r.samples[len(r.samples)-1].earliest > r.samples[0].earliest
	fmt.Printf("  ListOffsets earliest moved forward: %v; consumer from earliest all along: %d records, %d offset resets, %d OFFSET_OUT_OF_RANGE surfaced, %d other fetch errors\n",
		moved, r.consumed, r.resets, r.outOfRange, r.fetchErrs)
}

func measureRetention(ctx context.Context, o options, env *benchEnv, topic string, configs map[string]*string, window time.Duration) (retentionRun, error) {
	res := retentionRun{window: window}
	admin, err := kgo.NewClient(kgo.SeedBrokers(env.brokers...))
	if err != nil {
		return res, err
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	cr, err := adm.CreateTopic(ctx, int32(o.retentionPartitions), -1, configs, topic)
	if err == nil {
		err = cr.Err
	}
	if err != nil {
		return res, fmt.Errorf("create %s: %w", topic, err)
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var written atomic.Int64
	var wg sync.WaitGroup
	var prodErr, consErr firstError

	// The producer: o.retentionRate MB/s in 20 ticks a second.
	prod, err := kgo.NewClient(kgo.SeedBrokers(env.brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedBytes(64<<20))
	if err != nil {
		return res, err
	}
	defer prod.Close()
	perTick := int(o.retentionRate * 1e6 / 20 / float64(o.recordSize))
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-tick.C:
			}
			for range max(perTick, 1) {
				v := make([]byte, o.recordSize)
				rand.Read(v) // incompressible, within a record and across records
				prod.Produce(rctx, &kgo.Record{Value: v}, func(r *kgo.Record, err error) {
					switch {
					case err == nil:
						written.Add(int64(len(r.Value)))
					case rctx.Err() == nil:
						prodErr.set(err)
					}
				})
			}
		}
	}()

	// The consumer from the earliest offset, all along.
	cons, err := kgo.NewClient(kgo.SeedBrokers(env.brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return res, err
	}
	defer cons.Close()
	var consumed atomic.Int64
	var resets, fetchErrs, outOfRange atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		next := map[int32]int64{}
		for rctx.Err() == nil {
			fs := cons.PollFetches(rctx)
			fs.EachError(func(_ string, _ int32, err error) {
				switch {
				case errors.Is(err, context.Canceled):
				case errors.Is(err, kerr.OffsetOutOfRange):
					outOfRange.Add(1)
				default:
					fetchErrs.Add(1)
					consErr.set(err)
				}
			})
			fs.EachRecord(func(r *kgo.Record) {
				if n, ok := next[r.Partition]; ok && r.Offset > n {
					resets.Add(1) // moved past the log start: the client reset forward
				}
				next[r.Partition] = r.Offset + 1
				consumed.Add(1)
			})
		}
	}()

	start := time.Now()
	sample := func() error {
		objs, bytes, err := listBucket(ctx, env)
		if err != nil {
			return err
		}
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = starts.Error()
		}
		if err != nil {
			return fmt.Errorf("list start offsets: %w", err)
		}
		var earliest int64
		starts.Each(func(lo kadm.ListedOffset) { earliest += lo.Offset })
		res.samples = append(res.samples, retentionSample{at: time.Since(start), objects: objs, bytes: bytes, written: written.Load(), earliest: earliest})
		return nil
	}
	every := time.NewTicker(o.retentionSampleEvery)
	defer every.Stop()
	for time.Since(start) < o.retentionDur {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-every.C:
		}
		if err := sample(); err != nil {
			return res, err
		}
	}
	cancel()
	wg.Wait()
	if err := prodErr.get(); err != nil {
		return res, fmt.Errorf("produce: %w", err)
	}
	res.rate = mbPerSec(written.Load(), time.Since(start))
	res.consumed, res.resets, res.fetchErrs, res.outOfRange = consumed.Load(), int(resets.Load()), int(fetchErrs.Load()), int(outOfRange.Load())
	if err := consErr.get(); err != nil {
		fmt.Printf("  first fetch error: %v\n", err)
	}
	res.bound = int64(1.3 * res.rate * 1e6 * window.Seconds())
	for _, s := range res.samples {
		if s.at >= window {
			if res.plateauAt == 0 {
				res.plateauAt = s.at
			}
			res.plateauMax = max(res.plateauMax, s.bytes)
		}
	}
	return res, nil
}

// listBucket counts the objects in the run's bucket and their bytes, with
// an S3 client of its own.
func listBucket(ctx context.Context, env *benchEnv) (objects int, bytes int64, err error) {
	for obj := range env.mio.Client().ListObjects(ctx, env.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			return 0, 0, fmt.Errorf("list bucket %s: %w", env.bucket, obj.Err)
		}
		objects++
		bytes += obj.Size
	}
	return objects, bytes, nil
}

func deleteTopic(ctx context.Context, brokers []string, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).DeleteTopics(ctx, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", topic, err)
	}
	return nil
}

// retentionAgentArgs are the lifecycle settings the retention run gives
// its agents, replacing the bench's compaction off.
func retentionAgentArgs(o options) []string {
	return []string{"--compaction-interval", o.lifecycleInterval.String(), "--gc-grace", o.gcGrace.String(),
		"--compaction-segment-bytes", o.retentionSegment}
}

// firstError keeps the first error set, for goroutines and callbacks.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
