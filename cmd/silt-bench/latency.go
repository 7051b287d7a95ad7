package main

// Latency at a fixed, moderate rate: one paced producer stamps each record
// with its send time; produce latency is send → ack, end-to-end latency is
// send → receipt by each tail consumer of the same topic, one pinned to the
// writing agent's zone and one to another agent's. All clients live in this
// process, so one clock serves them all.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// warmup is how long after the start of a latency run samples are ignored:
// connections, metadata and the first flushes settle in it.
const warmup = time.Second

// tailSpec is one tail consumer: a label for the report, the zone it pins
// itself to and the agent (index into benchEnv.agents, -1 if unknown) that
// zone leads to.
type tailSpec struct {
	name  string
	zone  string
	agent int
}

// tailResult is what one tail consumer saw, and what its agent did
// meanwhile.
type tailResult struct {
	tailSpec
	e2e      latencies
	received int64
	counters *phaseCounters // nil when the agent's /metrics is unknown
}

type latencyResult struct {
	rate              float64 // target MB/s
	achieved          float64 // acknowledged MB/s over the run
	produce           latencies
	tails             []tailResult
	acked             int64
	duration          time.Duration
	produceErr, noted string
	writer            *phaseCounters // the writing agent, for the GET floor of other agents
}

// e2e is the first tail consumer's end-to-end latencies.
func (l latencyResult) e2e() latencies {
	if len(l.tails) == 0 {
		return nil
	}
	return l.tails[0].e2e
}

func measureLatency(ctx context.Context, brokers []string, o options, rate float64, producerZone string, tails []tailSpec) (latencyResult, error) {
	res := latencyResult{rate: rate, duration: o.latencyDur}
	idem, _, err := chooseIdempotence(ctx, brokers, o, o.topic, producerZone, nil)
	if err != nil {
		return res, err
	}
	// A phase id in every value keeps records of other runs out.
	var phase [8]byte
	rand.Read(phase[:])

	var mu sync.Mutex
	res.tails = make([]tailResult, len(tails))
	consumers := make([]*kgo.Client, len(tails))
	for i, t := range tails {
		res.tails[i].tailSpec = t
		c, err := tailConsumer(ctx, brokers, o.topic, t.zone)
		if err != nil {
			return res, err
		}
		defer c.Close()
		consumers[i] = c
	}
	producer, err := kgo.NewClient(producerOpts(brokers, o, o.topic, producerZone, idem)...)
	if err != nil {
		return res, err
	}
	defer producer.Close()

	start := time.Now()
	measureFrom := start.Add(warmup).UnixNano()
	consumeCtx, stopConsuming := context.WithCancel(ctx)
	defer stopConsuming()
	var consumed sync.WaitGroup
	for i, c := range consumers {
		tr := &res.tails[i]
		consumed.Add(1)
		go func() {
			defer consumed.Done()
			for consumeCtx.Err() == nil {
				fs := c.PollFetches(consumeCtx)
				now := time.Now().UnixNano()
				fs.EachRecord(func(r *kgo.Record) {
					sent, ok := stamp(r.Value, phase)
					if !ok {
						return
					}
					mu.Lock()
					tr.received++
					if sent >= measureFrom {
						tr.e2e = append(tr.e2e, time.Duration(now-sent))
					}
					mu.Unlock()
				})
			}
		}()
	}

	var (
		acked, ackedBytes int64
		firstErr          error
	)
	promise := func(r *kgo.Record, err error) {
		now := time.Now().UnixNano()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		acked++
		ackedBytes += int64(len(r.Value))
		if sent, _ := stamp(r.Value, phase); sent >= measureFrom {
			res.produce = append(res.produce, time.Duration(now-sent))
		}
	}

	// Pace by deficit every millisecond: the count due so far minus the
	// count sent, so a late tick catches up instead of lowering the rate.
	perSec := rate * 1e6 / float64(o.recordSize)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	end := start.Add(o.latencyDur)
	var sent int64
	for now := time.Now(); now.Before(end); now = time.Now() {
		due := int64(now.Sub(start).Seconds() * perSec)
		for ; sent < due; sent++ {
			v := make([]byte, o.recordSize)
			rand.Read(v[16:])
			binary.BigEndian.PutUint64(v[0:8], uint64(time.Now().UnixNano()))
			copy(v[8:16], phase[:])
			producer.Produce(ctx, &kgo.Record{Value: v}, promise)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = producer.Flush(fctx)
	cancel()
	if err != nil {
		return res, fmt.Errorf("flush producer: %w", err)
	}

	// Let the consumers catch up with everything acknowledged.
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		done := true
		for _, t := range res.tails {
			done = done && t.received >= acked
		}
		mu.Unlock()
		if done || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopConsuming()
	consumed.Wait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}

	mu.Lock()
	defer mu.Unlock()
	res.acked = acked
	res.achieved = mbPerSec(ackedBytes, time.Since(start))
	if firstErr != nil {
		if acked == 0 {
			return res, firstErr
		}
		res.produceErr = firstErr.Error()
	}
	for _, t := range res.tails {
		if t.received < acked {
			res.noted = joinNotes(res.noted, fmt.Sprintf("consumer on %s received %d of %d acknowledged records within 15 s", t.name, t.received, acked))
		}
	}
	if len(res.produce) == 0 {
		return res, errors.New("no produce acknowledged after the warm-up")
	}
	return res, nil
}

// tailConsumer consumes every partition of topic from its current end, so
// it sees exactly what is produced from now on.
func tailConsumer(ctx context.Context, brokers []string, topic, zone string) (*kgo.Client, error) {
	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(lo kadm.ListedOffset) {
		offsets[lo.Partition] = kgo.NewOffset().At(lo.Offset)
	})
	return kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ClientID(clientID(zone)),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxWait(time.Second),
	)
}

// stamp returns the send time in a value written in this phase.
func stamp(v []byte, phase [8]byte) (int64, bool) {
	if len(v) < 16 || [8]byte(v[8:16]) != phase {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(v[0:8])), true
}
