package main

// Maximum produce throughput: several producer clients writing 1 KiB
// records with acks=all as fast as the agent acknowledges them.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// throughputResult is the acknowledged volume over the measurement window.
type throughputResult struct {
	bytes, records int64
	elapsed        time.Duration
	producers      int
	idempotent     bool
	note           string // why the producer is not idempotent, if it is not
}

func (r throughputResult) mbps() float64 { return mbPerSec(r.bytes, r.elapsed) }

func (r throughputResult) recordsPerSec() float64 {
	return float64(r.records) / r.elapsed.Seconds()
}

// producerOpts are the options every benchmark producer uses: acks=all,
// no client compression (the payloads are random), linger as configured.
func producerOpts(brokers []string, o options, idempotent bool) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(o.topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(o.linger),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProduceRequestTimeout(30 * time.Second),
	}
	if !idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	return opts
}

func createTopic(ctx context.Context, brokers []string, topic string, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(partitions), -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s with %d partitions: %w", topic, partitions, err)
	}
	return nil
}

// chooseIdempotence produces one record with the idempotent producer (if
// asked for) and falls back to DisableIdempotentWrite if that fails.
func chooseIdempotence(ctx context.Context, brokers []string, o options) (idempotent bool, note string, err error) {
	try := func(idem bool) error {
		cl, err := kgo.NewClient(producerOpts(brokers, o, idem)...)
		if err != nil {
			return err
		}
		defer cl.Close()
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return cl.ProduceSync(pctx, &kgo.Record{Value: []byte("silt-bench probe")}).FirstErr()
	}
	if !o.idempotent {
		return false, "--idempotent=false", try(false)
	}
	ierr := try(true)
	if ierr == nil {
		return true, "", nil
	}
	if ctx.Err() != nil {
		return false, "", ctx.Err()
	}
	if err := try(false); err != nil {
		return false, "", fmt.Errorf("produce a probe record: idempotent: %v; non-idempotent: %w", ierr, err)
	}
	return false, fmt.Sprintf("idempotent producer failed (%v), used DisableIdempotentWrite", ierr), nil
}

func measureThroughput(ctx context.Context, brokers []string, o options) (throughputResult, error) {
	idem, note, err := chooseIdempotence(ctx, brokers, o)
	if err != nil {
		return throughputResult{}, err
	}
	if note != "" {
		progress("%s", note)
	}
	// Values are windows into one random buffer: no per-record allocation,
	// nothing compressible.
	pool := make([]byte, 8<<20)
	rand.Read(pool)
	nvals := (len(pool) - o.recordSize) / 61

	var (
		acked, ackedBytes atomic.Int64
		errOnce           sync.Once
		firstErr          error
		wg                sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(o.duration)
	runCtx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	for p := 0; p < o.producers; p++ {
		cl, err := kgo.NewClient(producerOpts(brokers, o, idem)...)
		if err != nil {
			return throughputResult{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			promise := func(r *kgo.Record, err error) {
				if err != nil {
					if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
						errOnce.Do(func() { firstErr = err })
					}
					return
				}
				if time.Now().Before(end) {
					acked.Add(1)
					ackedBytes.Add(int64(len(r.Value)))
				}
			}
			for i := p; runCtx.Err() == nil; i++ {
				off := (i % nvals) * 61
				cl.Produce(runCtx, &kgo.Record{Value: pool[off : off+o.recordSize]}, promise)
			}
			// Wait for what is in flight so the next phase starts quiet.
			fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
			defer fcancel()
			_ = cl.Flush(fctx)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return throughputResult{}, ctx.Err()
	}
	if firstErr != nil && acked.Load() == 0 {
		return throughputResult{}, firstErr
	}
	if firstErr != nil {
		note = joinNotes(note, fmt.Sprintf("some produce requests failed: %v", firstErr))
	}
	return throughputResult{
		bytes: ackedBytes.Load(), records: acked.Load(), elapsed: o.duration,
		producers: o.producers, idempotent: idem, note: note,
	}, nil
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
