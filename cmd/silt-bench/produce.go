package main

// Maximum produce throughput: several producer clients writing 1 KiB
// records with acks=all as fast as the agent acknowledges them.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
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

// clientID pins a client to zone (agents give it leaders in that zone) and
// names the benchmark in the agents' logs.
func clientID(zone string) string {
	if zone == "" {
		return "silt-bench"
	}
	return "silt-bench,silt_az=" + zone
}

// producerOpts are the options every benchmark producer uses: acks=all,
// no client compression (the payloads are random), linger as configured.
func producerOpts(brokers []string, o options, topic, zone string, idempotent bool) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID(clientID(zone)),
		kgo.DefaultProduceTopic(topic),
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
// asked for) and falls back to DisableIdempotentWrite if that fails. extra
// are added to the probe client (TLS, SASL).
func chooseIdempotence(ctx context.Context, brokers []string, o options, topic, zone string, extra []kgo.Opt) (idempotent bool, note string, err error) {
	try := func(idem bool) error {
		cl, err := kgo.NewClient(append(producerOpts(brokers, o, topic, zone, idem), extra...)...)
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

// blast is one flat-out produce run: producers clients write recordSize
// random records to topic as fast as they are acknowledged, until duration
// has passed or maxBytes are acknowledged (whichever is set).
type blast struct {
	topic, zone string
	producers   int
	duration    time.Duration
	maxBytes    int64
	// opts are added to every producer client (hooks).
	opts []kgo.Opt
	// conn are how every client, the idempotence probe's too, reaches
	// the brokers (TLS, SASL); none for plaintext.
	conn []kgo.Opt
}

// blastResult is a throughputResult plus what the overload phase reads.
type blastResult struct {
	throughputResult
	ackLat   latencies // record timestamp (set by kgo at Produce) → ack
	failures int64     // records that failed
}

func runBlast(ctx context.Context, brokers []string, o options, b blast) (blastResult, error) {
	idem, note, err := chooseIdempotence(ctx, brokers, o, b.topic, b.zone, b.conn)
	if err != nil {
		return blastResult{}, err
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
		acked, ackedBytes, failed atomic.Int64
		sentBytes                 atomic.Int64
		errOnce                   sync.Once
		firstErr                  error
		wg                        sync.WaitGroup
		latMu                     sync.Mutex
		lat                       latencies
	)
	start := time.Now()
	end := start.Add(b.duration)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if b.duration > 0 {
		var c2 context.CancelFunc
		runCtx, c2 = context.WithDeadline(runCtx, end)
		defer c2()
	} else {
		end = start.Add(24 * time.Hour)
	}
	var doneAt atomic.Int64 // unix nanos when maxBytes was reached
	for p := 0; p < b.producers; p++ {
		cl, err := kgo.NewClient(slices.Concat(producerOpts(brokers, o, b.topic, b.zone, idem), b.conn, b.opts)...)
		if err != nil {
			return blastResult{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			promise := func(r *kgo.Record, err error) {
				now := time.Now()
				if err != nil {
					if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
						failed.Add(1)
						errOnce.Do(func() { firstErr = err })
					}
					return
				}
				if now.Before(end) {
					acked.Add(1)
					n := ackedBytes.Add(int64(len(r.Value)))
					if b.maxBytes > 0 && n >= b.maxBytes {
						doneAt.CompareAndSwap(0, now.UnixNano())
					}
					latMu.Lock()
					lat = append(lat, now.Sub(r.Timestamp))
					latMu.Unlock()
				}
			}
			for i := p; runCtx.Err() == nil; i++ {
				// With a byte target, stop sending once it is
				// sent; what is in flight is still acknowledged.
				if b.maxBytes > 0 && sentBytes.Add(int64(o.recordSize)) > b.maxBytes {
					break
				}
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
		return blastResult{}, ctx.Err()
	}
	elapsed := b.duration
	if d := doneAt.Load(); d != 0 {
		elapsed = time.Unix(0, d).Sub(start)
	} else if b.duration == 0 {
		elapsed = time.Since(start)
	}
	if firstErr != nil && acked.Load() == 0 {
		return blastResult{}, firstErr
	}
	if firstErr != nil {
		note = joinNotes(note, fmt.Sprintf("%d records failed, first: %v", failed.Load(), firstErr))
	}
	return blastResult{
		throughputResult: throughputResult{
			bytes: ackedBytes.Load(), records: acked.Load(), elapsed: elapsed,
			producers: b.producers, idempotent: idem, note: note,
		},
		ackLat:   lat,
		failures: failed.Load(),
	}, nil
}

func measureThroughput(ctx context.Context, brokers []string, o options, zone string) (throughputResult, error) {
	r, err := runBlast(ctx, brokers, o, blast{topic: o.topic, zone: zone, producers: o.producers, duration: o.duration})
	return r.throughputResult, err
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
