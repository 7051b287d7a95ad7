package main

// Fetch sessions (KIP-227): what a consumer of many partitions sends to keep
// tailing. One topic of --session-partitions partitions gets a trickle of
// records spread over all of them; a consumer tails it with fetch sessions
// (kgo's default when the broker opens one) and another, at the same time,
// without (kgo.DisableFetchSessions). Each counts the bytes of the Fetch
// requests it writes; the ratio is what sessions save.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type fetchSessionsResult struct {
	partitions         int
	elapsed            time.Duration
	produced           int64 // records
	withBytes, without int64 // Fetch request bytes written
	withReqs, withoutN int64 // Fetch requests written
	withRead, withoutR int64 // records consumed
	note               string
}

func (r fetchSessionsResult) rate(n int64) float64 { return float64(n) / r.elapsed.Seconds() }

// fetchWriteHook counts the Fetch requests a client writes and their bytes.
type fetchWriteHook struct{ bytes, requests atomic.Int64 }

func (h *fetchWriteHook) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, err error) {
	if key == int16(kmsg.Fetch) && err == nil {
		h.bytes.Add(int64(n))
		h.requests.Add(1)
	}
}

func measureFetchSessions(ctx context.Context, env *benchEnv, o options) (fetchSessionsResult, error) {
	res := fetchSessionsResult{partitions: o.sessionPartitions}
	topic := o.topic + "-sessions"
	if err := createTopic(ctx, env.brokers, topic, o.sessionPartitions); err != nil {
		return res, err
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(env.brokers...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		return res, err
	}
	defer prod.Close()
	hooks := [2]*fetchWriteHook{{}, {}}
	var consumed [2]atomic.Int64
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for i, opts := range [][]kgo.Opt{nil, {kgo.DisableFetchSessions()}} {
		cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(env.brokers...), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.WithHooks(hooks[i]))...)
		if err != nil {
			return res, err
		}
		defer cl.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cctx.Err() == nil {
				fs := cl.PollFetches(cctx)
				consumed[i].Add(int64(fs.NumRecords()))
			}
		}()
	}
	// A trickle: 200 records a second, each partition's turn coming round
	// every few seconds, so most fetches find most partitions unchanged.
	progress("fetch sessions: %d partitions, 200 records/s for %s, one consumer with sessions and one without", o.sessionPartitions, o.sessionDur)
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < o.sessionDur {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
		prod.Produce(ctx, &kgo.Record{Value: []byte("tick")}, func(_ *kgo.Record, err error) {
			if err == nil {
				atomic.AddInt64(&res.produced, 1)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		return res, err
	}
	res.elapsed = time.Since(start)
	stop()
	wg.Wait()
	res.withBytes, res.withReqs = hooks[0].bytes.Load(), hooks[0].requests.Load()
	res.without, res.withoutN = hooks[1].bytes.Load(), hooks[1].requests.Load()
	res.withRead, res.withoutR = consumed[0].Load(), consumed[1].Load()
	if res.withRead < res.produced/2 || res.withoutR < res.produced/2 {
		res.note = fmt.Sprintf("the consumers read %d and %d of %d records: they may have joined late", res.withRead, res.withoutR, res.produced)
	}
	return res, nil
}
