package agent_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/siltstream/silt/internal/promtest"
	"github.com/siltstream/silt/quota"
)

// throttleHook counts the throttles a kgo client is told of.
type throttleHook struct{ n atomic.Int64 }

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if d > 0 {
		h.n.Add(1)
	}
}

// setQuota sets one quota key for a client id through ta and waits until
// ta applies it.
func setQuota(t *testing.T, ta *testAgent, clientID, key string, v float64, typ quota.Type) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := kadm.NewClient(ta.client(t)).AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: quotaEntity("client-id", clientID), Ops: []kadm.AlterClientQuotaOp{{Key: key, Value: v}},
	}})
	if err != nil || firstQuotaErr(res) != nil {
		t.Fatalf("set %s for %s: %v, %v", key, clientID, err, firstQuotaErr(res))
	}
	if b, ok := ta.ClientQuotaBound(typ, "ANONYMOUS", clientID); !ok || b != v {
		t.Fatalf("after the change the agent applies %v, %v", b, ok)
	}
}

// The quotas the throughput tests use, and how much they move: the first
// ten seconds' worth passes at once (Kafka measures a rate over at least
// ten one-second samples), the rest at the quota.
const (
	testQuota  = 64 << 10
	testVolume = 15 * testQuota
	recordSize = 8 << 10
)

// maxWithinQuota is the most a client held to testQuota can move in
// elapsed: the quota over the elapsed time plus the sampled window (11s),
// and two records of slack. A client that is not throttled moves
// testVolume far faster than that allows.
func maxWithinQuota(elapsed time.Duration) float64 {
	return testQuota*(elapsed.Seconds()+12) + 2*recordSize
}

// randomValue is a record value that does not compress, so the bytes on
// the wire are the bytes counted.
func randomValue(t *testing.T) []byte {
	v := make([]byte, recordSize)
	if _, err := rand.Read(v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestProduceQuota: a producer whose client id has producer_byte_rate is
// told to back off (throttle_time_ms) once over it, and what it moves
// stays within the quota; the agent counts the throttle time; a client
// id without a quota is never throttled.
func TestProduceQuota(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ta := startAgent(t, bk, nil)
		createTopic(t, ta.client(t), "quota-produce", 1, nil)
		setQuota(t, ta, "slow-producer", quota.ProducerByteRate, testQuota, quota.Produce)

		var slowHook, fastHook throttleHook
		slow := ta.client(t, kgo.ClientID("slow-producer"), kgo.WithHooks(&slowHook), kgo.DefaultProduceTopic("quota-produce"), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(2*recordSize))
		fast := ta.client(t, kgo.ClientID("fast-producer"), kgo.WithHooks(&fastHook), kgo.DefaultProduceTopic("quota-produce"), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(2*recordSize))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		value := randomValue(t)
		produce := func(cl *kgo.Client) time.Duration {
			start := time.Now()
			for sent := 0; sent < testVolume; sent += len(value) {
				cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Errorf("produce: %v", err)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			return time.Since(start)
		}
		produce(fast)
		elapsed := produce(slow)

		if slowHook.n.Load() == 0 {
			t.Error("the producer over its quota was never throttled")
		}
		if fastHook.n.Load() != 0 {
			t.Errorf("the producer without a quota was throttled %d times", fastHook.n.Load())
		}
		if ta.QuotaThrottled(quota.Produce) <= 0 {
			t.Error("the agent counted no produce throttle time")
		}
		reg := prometheus.NewRegistry()
		if err := ta.RegisterMetrics(reg); err != nil {
			t.Fatal(err)
		}
		got := promtest.Gather(t, reg)
		if got[`silt_quota_throttle_seconds_total{type="produce"}`] <= 0 || got[`silt_quota_throttle_seconds_total{type="fetch"}`] != 0 {
			t.Errorf("silt_quota_throttle_seconds_total: produce %v, fetch %v; want > 0 and 0",
				got[`silt_quota_throttle_seconds_total{type="produce"}`], got[`silt_quota_throttle_seconds_total{type="fetch"}`])
		}
		if max := maxWithinQuota(elapsed); testVolume > max {
			t.Errorf("produced %d bytes in %v: more than a quota of %d B/s allows (%.0f)", testVolume, elapsed, testQuota, max)
		}
		t.Logf("produced %d bytes in %v under a quota of %d B/s", testVolume, elapsed, testQuota)
	})
}

// TestProduceQuotaOldVersion: a producer from before KIP-219 (Produce
// v5) does not back off by itself; its throttled responses come late,
// carry the throttle, and hold it to the quota all the same.
func TestProduceQuotaOldVersion(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, nil)
	createTopic(t, ta.client(t), "quota-produce-v5", 1, nil)
	setQuota(t, ta, "old-producer", quota.ProducerByteRate, testQuota, quota.Produce)
	var h throttleHook
	cl := ta.client(t, kgo.ClientID("old-producer"), kgo.WithHooks(&h), kgo.DefaultProduceTopic("quota-produce-v5"),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(2*recordSize), kgo.MaxVersions(kversion.V1_1_0()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	value := randomValue(t)
	start := time.Now()
	for sent := 0; sent < testVolume; sent += len(value) {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if h.n.Load() == 0 || ta.QuotaThrottled(quota.Produce) <= 0 {
		t.Errorf("throttles reported %d, counted %v; want some", h.n.Load(), ta.QuotaThrottled(quota.Produce))
	}
	if max := maxWithinQuota(elapsed); testVolume > max {
		t.Errorf("produced %d bytes in %v: more than a quota of %d B/s allows (%.0f)", testVolume, elapsed, testQuota, max)
	}
}

// TestFetchQuota: a consumer whose client id has consumer_byte_rate gets
// throttled fetches once over it, and what it reads stays within the
// quota; a consumer without a quota reads everything unthrottled.
func TestFetchQuota(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ta := startAgent(t, bk, nil)
		createTopic(t, ta.client(t), "quota-fetch", 1, nil)
		setQuota(t, ta, "slow-consumer", quota.ConsumerByteRate, testQuota, quota.Fetch)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Batches well under the quota's window: as in Kafka, a fetch
		// whose first batch alone is over the window is never served.
		prod := ta.client(t, kgo.DefaultProduceTopic("quota-fetch"), kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.ProducerBatchMaxBytes(4*recordSize))
		value := randomValue(t)
		records := testVolume / recordSize
		for i := 0; i < records; i++ {
			prod.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}

		consume := func(clientID string, h *throttleHook) time.Duration {
			// Small fetches, so each throttle is short.
			cl := ta.client(t, kgo.ClientID(clientID), kgo.WithHooks(h), kgo.ConsumeTopics("quota-fetch"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(4*recordSize), kgo.FetchMaxPartitionBytes(4*recordSize))
			start := time.Now()
			n := 0
			for n < records {
				fs := cl.PollFetches(ctx)
				if err := ctx.Err(); err != nil {
					t.Fatalf("%s read %d of %d records: %v", clientID, n, records, err)
				}
				fs.EachError(func(_ string, _ int32, err error) { t.Errorf("%s: fetch: %v", clientID, err) })
				n += fs.NumRecords()
			}
			return time.Since(start)
		}
		var slowHook, fastHook throttleHook
		consume("fast-consumer", &fastHook)
		elapsed := consume("slow-consumer", &slowHook)

		if slowHook.n.Load() == 0 {
			t.Error("the consumer over its quota was never throttled")
		}
		if fastHook.n.Load() != 0 {
			t.Errorf("the consumer without a quota was throttled %d times", fastHook.n.Load())
		}
		if ta.QuotaThrottled(quota.Fetch) <= 0 {
			t.Error("the agent counted no fetch throttle time")
		}
		if max := maxWithinQuota(elapsed); testVolume > max {
			t.Errorf("consumed %d bytes in %v: more than a quota of %d B/s allows (%.0f)", testVolume, elapsed, testQuota, max)
		}
		t.Logf("consumed %d bytes in %v under a quota of %d B/s", testVolume, elapsed, testQuota)
	})
}

// TestRequestQuota: a client id with a tiny request_percentage is
// throttled for the time its requests take to handle.
func TestRequestQuota(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, nil)
	setQuota(t, ta, "busy", quota.RequestPercentage, 0.0001, quota.Request)
	var h throttleHook
	cl := ta.client(t, kgo.ClientID("busy"), kgo.WithHooks(&h))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 50 && h.n.Load() == 0; i++ {
		if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
			t.Fatal(err)
		}
	}
	if h.n.Load() == 0 || ta.QuotaThrottled(quota.Request) <= 0 {
		t.Fatalf("throttles seen %d, counted %v; want some", h.n.Load(), ta.QuotaThrottled(quota.Request))
	}
}

// TestConnectionQuota: connections from an IP over its
// connection_creation_rate are closed unserved, after the first ten
// seconds' worth; the agent counts the throttle.
func TestConnectionQuota(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ta := startAgent(t, bk, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := kadm.NewClient(ta.client(t)).AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
			Entity: quotaEntity("ip", "127.0.0.1"), Ops: []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: 1}},
		}})
		if err != nil || firstQuotaErr(res) != nil {
			t.Fatalf("alter: %v, %v", err, firstQuotaErr(res))
		}
		// kgo's connection above counts; at 1/s the window holds ten.
		// Raw connections, so no client retries hide a refusal.
		refused := 0
		for i := 0; i < 15 && refused == 0; i++ {
			if err := rawApiVersions(ta.addr); err != nil {
				refused++
			}
		}
		if refused == 0 || ta.QuotaThrottled(quota.Connection) <= 0 {
			t.Fatalf("refused none of 15 connections (counted %v)", ta.QuotaThrottled(quota.Connection))
		}
	})
}

// rawApiVersions sends ApiVersions v0 on a new connection and reads the
// answer's size; an error means the connection was closed unanswered.
func rawApiVersions(addr string) error {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	req := kmsg.NewPtrApiVersionsRequest()
	// Header v1: key, version, correlation id, null client id.
	msg := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	msg = binary.BigEndian.AppendUint16(msg, 0)
	msg = binary.BigEndian.AppendUint32(msg, 1)
	msg = binary.BigEndian.AppendUint16(msg, 0xffff)
	msg = req.AppendTo(msg)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(msg)))
	if _, err := nc.Write(append(frame, msg...)); err != nil {
		return err
	}
	var size [4]byte
	_, err = io.ReadFull(nc, size[:])
	return err
}
