package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/internal/promtest"
)

// The agent's metrics move with produce and fetch, and a request answered
// with an error is counted under that error.
func TestMetricsMoveWithTraffic(t *testing.T) {
	forEachBackend(t, testMetricsMoveWithTraffic)
}

func testMetricsMoveWithTraffic(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	reg := prometheus.NewPedanticRegistry()
	if err := ta.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	before := promtest.Gather(t, reg)
	for _, s := range []string{"silt_produce_bytes_total", "silt_fetch_bytes_total", "silt_buffer_bytes", "silt_cache_hits_total", "silt_connections", "silt_topics"} {
		if _, ok := before[s]; !ok {
			t.Errorf("%s missing before any traffic", s)
		}
	}

	cl := ta.client(t, kgo.DefaultProduceTopic("metered"))
	createTopic(t, cl, "metered", 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i), 1, 2, 3}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	consumer := ta.client(t, kgo.ConsumeTopics("metered"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for n := 0; n < 10; {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		n += fs.NumRecords()
	}
	// A Metadata request for an unknown topic with auto-create off is
	// answered UNKNOWN_TOPIC_OR_PARTITION.
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("no-such-topic")
	mreq.Topics = append(mreq.Topics, mt)
	mreq.AllowAutoTopicCreation = false
	if _, err := mreq.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}

	got := promtest.Gather(t, reg)
	for _, s := range []string{
		"silt_produce_bytes_total", "silt_produce_batches_total", "silt_produce_records_total",
		"silt_fetch_bytes_total", "silt_flushes_total", "silt_flush_bytes_count",
		"silt_flush_duration_seconds_count", "silt_flush_upload_duration_seconds_count",
		"silt_commit_duration_seconds_count",
		`silt_kafka_requests_total{api="Produce",error="NONE"}`,
		`silt_kafka_requests_total{api="Fetch",error="NONE"}`,
		`silt_kafka_requests_total{api="Metadata",error="UNKNOWN_TOPIC_OR_PARTITION"}`,
		`silt_kafka_request_duration_seconds_count{api="Produce"}`,
		`silt_kafka_request_duration_seconds_count{api="ApiVersions"}`,
		"silt_connections", "silt_buffer_limit_bytes", "silt_request_limit_bytes",
	} {
		if got[s] <= 0 {
			t.Errorf("%s = %v, want > 0", s, got[s])
		}
	}
	if got["silt_produce_records_total"] != 10 {
		t.Errorf("silt_produce_records_total = %v, want 10", got["silt_produce_records_total"])
	}
	if got["silt_topics"] < 1 || got["silt_partitions"] < 3 {
		t.Errorf("silt_topics = %v, silt_partitions = %v; want at least 1 and 3", got["silt_topics"], got["silt_partitions"])
	}
	// Every produced batch is committed, so the buffer budget comes back
	// (just after producers get their answers).
	for deadline := time.Now().Add(10 * time.Second); promtest.Gather(t, reg)["silt_buffer_bytes"] != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("silt_buffer_bytes = %v long after every produce was answered, want 0", promtest.Gather(t, reg)["silt_buffer_bytes"])
		}
		time.Sleep(5 * time.Millisecond)
	}
}
