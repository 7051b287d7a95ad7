package main

// Compaction: after the write-path catch-up read, the catch-up topic is
// compacted (jobs.Compactor, run in this process against the cluster's
// database and bucket, past any block cache as in an agent, its bucket
// calls counted), then read again from its
// start through an agent started for it, whose cache has seen nothing: the
// cold catch-up of compacted data, beside raw GET MB/s. The cluster's
// agents run with compaction off (--compaction-segment-bytes 0), so the
// write-path figures are of flush segments and compaction's cost is its
// own.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/jobs"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/metastoreurl"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/bucketurl"
)

type compactionResult struct {
	topic    string
	written  int64 // bytes the catch-up phase acknowledged to the topic
	pass     jobs.Compaction
	elapsed  time.Duration
	bucket   bucketCounts // the compactor's bucket calls
	read     readResult   // the cold read of the compacted topic
	warm     readResult   // the same read again, the agent's cache warm
	reader   string
	segBytes int64
}

// bucketCounts counts an objectstore.Bucket's calls.
type bucketCounts struct {
	gets, puts         int64
	getBytes, putBytes int64
}

// countingBucket counts calls to the bucket it wraps.
type countingBucket struct {
	objectstore.Bucket
	gets, puts, getBytes, putBytes atomic.Int64
}

func (b *countingBucket) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	d, err := b.Bucket.Get(ctx, key, off, length)
	b.gets.Add(1)
	b.getBytes.Add(int64(len(d)))
	return d, err
}

func (b *countingBucket) Put(ctx context.Context, key string, data []byte) error {
	b.puts.Add(1)
	b.putBytes.Add(int64(len(data)))
	return b.Bucket.Put(ctx, key, data)
}

func (b *countingBucket) counts() bucketCounts {
	return bucketCounts{gets: b.gets.Load(), puts: b.puts.Load(), getBytes: b.getBytes.Load(), putBytes: b.putBytes.Load()}
}

func measureCompaction(ctx context.Context, env *benchEnv, o options, c catchupResult, logf func(string, ...any)) (compactionResult, error) {
	res := compactionResult{topic: c.topic, written: c.written, segBytes: jobs.DefaultCompactionSegmentBytes}
	store, err := metastoreurl.Open(ctx, env.dbURL)
	if err != nil {
		return res, fmt.Errorf("open metastore: %w", err)
	}
	defer store.Close()
	// The s3 driver takes credentials from the environment, as the agents
	// do.
	for _, kv := range env.mio.Env() {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return res, err
		}
	}
	raw, err := bucketurl.Open(ctx, env.bucketURL)
	if err != nil {
		return res, fmt.Errorf("open bucket: %w", err)
	}
	defer raw.Close()
	topic, err := store.Topic(ctx, c.topic)
	if err != nil {
		return res, err
	}
	// Straight to the bucket, as an agent's compactor reads (past its
	// block cache), counted.
	b := &countingBucket{Bucket: raw}
	comp := &jobs.Compactor{
		AgentID: "silt-bench", Store: store, Bucket: b, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		SegmentBytes: res.segBytes,
		Owns:         func(tp metastore.TopicPartition) bool { return tp.Topic == topic.ID },
	}
	progress("compaction: compacting %s (%s segments)", c.topic, sizeString64(res.segBytes))
	start := time.Now()
	res.pass, err = comp.CompactOnce(ctx)
	res.elapsed = time.Since(start)
	res.bucket = b.counts()
	if err != nil {
		return res, fmt.Errorf("compact %s: %w", c.topic, err)
	}

	// A fresh agent, in a zone of its own, so the reader's cache has seen
	// neither the flush segments nor the compacted ones.
	const zone = "zc"
	a, err := env.startAgent(ctx, len(env.agents), zone, env.agentArgs(o, env.bucketURL, env.dbURL), false, logf)
	if err != nil {
		return res, err
	}
	defer func() {
		// Out of the cluster again, so later phases run as before.
		_ = syscall.Kill(a.pid, syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(30 * time.Second):
		}
		if n := len(env.agents); n > 0 && env.agents[n-1] == a {
			env.agents = env.agents[:n-1]
		}
	}()
	// Every agent must list it (and lead zone zc's clients to it) before
	// the read starts, as for the cluster's own agents at setup.
	if err := env.waitForCluster(ctx); err != nil {
		return res, err
	}
	res.reader = "a fresh agent (cold cache)"
	want, err := endOffsets(ctx, env.brokers, c.topic)
	if err != nil {
		return res, err
	}
	progress("compaction: reading %s from the start through %s", c.topic, res.reader)
	wantAgain := maps.Clone(want)
	if res.read, err = readFromStart(ctx, env, c.topic, zone, a, want, c.written); err != nil {
		return res, err
	}
	// Again through the same agent, now warm: what one consumer can take
	// when the bucket costs nothing (on a small machine the client's own
	// zstd decompression and record decoding bound both reads).
	progress("compaction: reading %s again through the now warm agent", c.topic)
	res.warm, err = readFromStart(ctx, env, c.topic, zone, a, wantAgain, c.written)
	return res, err
}

// readResult is one read of a topic from its start.
type readResult struct {
	read     int64 // value bytes consumed
	records  int64
	elapsed  time.Duration
	counters *phaseCounters // the reading agent during the read
	note     string
}

func (r readResult) mbps() float64 { return mbPerSec(r.read, r.elapsed) }

// endOffsets lists topic's partitions' end offsets, those above 0.
func endOffsets(ctx context.Context, brokers []string, topic string) (map[int32]int64, error) {
	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	admin.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(lo kadm.ListedOffset) {
		if lo.Offset > 0 {
			want[lo.Partition] = lo.Offset
		}
	})
	return want, nil
}

// readFromStart consumes topic from its start until every partition in
// want is read to its end offset, through the agent of zone (ra, whose
// counters are taken; nil: none).
func readFromStart(ctx context.Context, env *benchEnv, topic, zone string, ra *agentProc, want map[int32]int64, written int64) (readResult, error) {
	var res readResult
	var before metricSnap
	if ra != nil {
		before = scrapeMetrics(ctx, ra.httpAddr)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(env.brokers...),
		kgo.ClientID(clientID(zone)),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	// Generous: a fifth of raw GET speed on a slow machine would still fit.
	timeout := max(2*time.Minute, time.Duration(float64(written)/2e6)*time.Second)
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
