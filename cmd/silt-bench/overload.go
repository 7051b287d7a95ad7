package main

// Memory under overload: an agent of its own (its own database, so its own
// one-agent cluster) whose bucket is reached through a proxy that caps
// upload bandwidth well below what the producers offer, with one upload at
// a time. Producers push as fast as they can; the agent should slow them
// (throttle, latency) and keep its RSS near its buffer + cache budgets.

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/cache"
)

type overloadResult struct {
	capMBps     float64 // proxy upload cap
	offeredMBps float64 // unthrottled max produce throughput measured earlier (0: unknown)
	produce     blastResult
	rssIdle     int64 // VmRSS before the load
	rssPeak     int64 // max VmRSS sampled
	hwm         int64 // VmHWM at the end
	bufferPeak  int64 // max silt_buffer_bytes sampled (-1: not exported)
	buffer      int64 // buffer.bytes budget
	cache       int64 // cache.memory.bytes budget
	throttles   int64 // produce responses with a throttle time
	throttleMax time.Duration
	alive       bool
	exit        string
	partitions  int
	maxUploads  int
	counters    *phaseCounters
}

// throttleHook counts broker throttles reported to the producers.
type throttleHook struct {
	mu    sync.Mutex
	n     int64
	max   time.Duration
	total time.Duration
}

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if d <= 0 {
		return
	}
	h.mu.Lock()
	h.n++
	h.total += d
	h.max = max(h.max, d)
	h.mu.Unlock()
}

func measureOverload(ctx context.Context, env *benchEnv, o options, offeredMBps float64, logf func(string, ...any)) (overloadResult, error) {
	def := agent.DefaultConfig()
	res := overloadResult{
		offeredMBps: offeredMBps,
		capMBps:     o.overloadUploadMBps,
		buffer:      sizeOr(o.bufferBytes, def.BufferBytes),
		cache:       sizeOr(o.cacheBytes, cache.DefaultConfig().MemoryBytes),
		bufferPeak:  -1,
		partitions:  o.overloadPartitions,
		maxUploads:  o.overloadMaxUploads,
	}
	if res.capMBps <= 0 {
		res.capMBps = 25
		if offeredMBps > 0 {
			res.capMBps = offeredMBps / 4
		}
	}
	u, err := url.Parse(env.mio.Endpoint)
	if err != nil {
		return res, fmt.Errorf("MinIO endpoint %q: %w", env.mio.Endpoint, err)
	}
	proxy, err := startThrottledProxy(u.Host, res.capMBps*1e6)
	if err != nil {
		return res, fmt.Errorf("start throttling proxy: %w", err)
	}
	env.onClose(proxy.close) // after the agent behind it has stopped
	dbURL, err := env.pg.CreateDatabase(ctx, "silt_bench_overload")
	if err != nil {
		return res, err
	}
	// MinIO's own bucket URL with the proxy as endpoint.
	bu, err := url.Parse(env.mio.BucketURL(env.bucket, "overload"))
	if err != nil {
		return res, err
	}
	q := bu.Query()
	q.Set("endpoint", "http://"+proxy.addr())
	bu.RawQuery = q.Encode()
	args := env.agentArgs(o, bu.String(), dbURL)
	args = append(args, "--flush-max-uploads", fmt.Sprint(o.overloadMaxUploads))
	a, err := env.startAgent(ctx, len(env.agents), "overload", args, false, logf)
	if err != nil {
		return res, err
	}
	brokers := []string{a.kafkaAddr}
	topic := o.topic + "-overload"
	if err := createTopic(ctx, brokers, topic, o.overloadPartitions); err != nil {
		return res, err
	}
	res.rssIdle, _, _ = procStatus(a.pid)
	before := scrapeMetrics(ctx, a.httpAddr)

	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			if rss, _, err := procStatus(a.pid); err == nil {
				res.rssPeak = max(res.rssPeak, rss)
			}
			if i%5 == 0 {
				if m := scrapeMetrics(sctx, a.httpAddr); m != nil {
					if v, ok := m.sum(mBufferBytes); ok {
						res.bufferPeak = max(res.bufferPeak, int64(v))
					}
				}
			}
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	hook := &throttleHook{}
	progress("overload: %d producers on %d partitions for %s, uploads capped at %.1f MB/s, flush.max.uploads=%d",
		o.overloadProducers, o.overloadPartitions, o.overloadDur, res.capMBps, o.overloadMaxUploads)
	res.produce, err = runBlast(ctx, brokers, o, blast{
		topic: topic, producers: o.overloadProducers, duration: o.overloadDur,
		opts: []kgo.Opt{kgo.WithHooks(hook)},
	})
	stopSampling()
	<-sampled
	if err != nil && ctx.Err() != nil {
		return res, err
	}
	if err != nil {
		// Every record failed: still report memory and whether the agent lives.
		res.produce.note = joinNotes(res.produce.note, err.Error())
	}
	_, res.hwm, _ = procStatus(a.pid)
	res.throttles, res.throttleMax = hook.n, hook.max
	res.alive = a.alive()
	if !res.alive {
		res.exit = fmt.Sprint(a.exitErr)
	}
	if after := scrapeMetrics(ctx, a.httpAddr); after != nil {
		c := countersBetween(a.id, before, after)
		res.counters = &c
	}
	return res, nil
}
