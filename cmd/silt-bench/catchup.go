package main

// The cold catch-up read: a fresh topic is filled with --catchup-bytes by
// the writing agent, then read from its start through another agent whose
// block cache has never seen those segments. Its MB/s stands beside raw
// MinIO GET MB/s.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type catchupResult struct {
	topic      string
	written    int64 // bytes acknowledged
	writeMBps  float64
	read       int64 // value bytes consumed
	records    int64
	elapsed    time.Duration
	readerName string
	counters   *phaseCounters // the reading agent during the read
	note       string
}

func (c catchupResult) mbps() float64 { return mbPerSec(c.read, c.elapsed) }

func measureCatchup(ctx context.Context, env *benchEnv, o options) (catchupResult, error) {
	res := catchupResult{topic: o.topic + "-catchup", readerName: "the writing agent (warm)"}
	switch {
	case env.readerZone != "":
		res.readerName = "agent in zone " + env.readerZone
	case len(env.agents) == 0:
		res.readerName = "an unpinned client"
	}
	if err := createTopic(ctx, env.brokers, res.topic, o.partitions); err != nil {
		return res, err
	}
	progress("catch-up: writing %s to %s", sizeString64(o.catchupBytes), res.topic)
	w, err := runBlast(ctx, env.brokers, o, blast{topic: res.topic, zone: env.writerZone, producers: o.producers, maxBytes: o.catchupBytes})
	if err != nil {
		return res, fmt.Errorf("write: %w", err)
	}
	res.written, res.writeMBps = w.bytes, w.mbps()

	admin, err := kgo.NewClient(kgo.SeedBrokers(env.brokers...))
	if err != nil {
		return res, err
	}
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, res.topic)
	admin.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return res, fmt.Errorf("list end offsets of %s: %w", res.topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(lo kadm.ListedOffset) {
		if lo.Offset > 0 {
			want[lo.Partition] = lo.Offset
		}
	})

	reader := -1
	if env.readerZone != "" {
		reader = 1
	} else if len(env.agents) > 0 {
		reader = 0
	}
	ra := env.agent(reader)
	var before metricSnap
	if ra != nil {
		before = scrapeMetrics(ctx, ra.httpAddr)
	}
	progress("catch-up: reading %s from the start through %s", res.topic, res.readerName)
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(env.brokers...),
		kgo.ClientID(clientID(env.readerZone)),
		kgo.ConsumeTopics(res.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	// Generous: a fifth of raw GET speed on a slow machine would still fit.
	timeout := max(2*time.Minute, time.Duration(float64(res.written)/2e6)*time.Second)
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	for len(want) > 0 && rctx.Err() == nil {
		fs := cl.PollFetches(rctx)
		fs.EachRecord(func(r *kgo.Record) {
			res.read += int64(len(r.Value))
			res.records++
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	res.elapsed = time.Since(start)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if len(want) > 0 {
		res.note = fmt.Sprintf("stopped after %s with %d partitions not read to their end", timeout, len(want))
	}
	if ra != nil {
		c := countersBetween(ra.id, before, scrapeMetrics(ctx, ra.httpAddr))
		res.counters = &c
	}
	return res, nil
}

func sizeString64(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return sizeString(int(n))
}
