package agent

import (
	"reflect"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/cache"
)

// requestMetrics count Kafka requests as they are answered (via the wire
// server's Observe hook). The write pipeline has its own histograms
// (ingest.Metrics); cumulative counters that Stats already keeps are
// exported at scrape time by statsCollector instead of being counted twice.
// No series is labelled by topic or partition.
type requestMetrics struct {
	requests *prometheus.CounterVec   // api, error
	latency  *prometheus.HistogramVec // api
}

func newRequestMetrics() *requestMetrics {
	return &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_kafka_requests_total",
			Help: "Kafka requests answered, by API and by the first non-zero error code in the response (top-level first, then per topic and partition; NONE if there is none).",
		}, []string{"api", "error"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "silt_kafka_request_duration_seconds",
			Help:    "Time from reading a Kafka request to having its response ready, by API; includes waiting for durability (Produce) and long polls (Fetch).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18), // 0.5ms .. ~65s
		}, []string{"api"}),
	}
}

// observeRequest is the wire server's Config.Observe.
func (m *requestMetrics) observeRequest(key, _ int16, d time.Duration, resp kmsg.Response) {
	api := kmsg.NameForKey(key)
	m.latency.WithLabelValues(api).Observe(d.Seconds())
	m.requests.WithLabelValues(api, errorLabel(firstErrorCode(resp))).Inc()
}

// errorLabel names a Kafka error code; the set is bounded by kerr's table.
func errorLabel(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && e.Code == code {
		return e.Message
	}
	return "CODE_" + strconv.Itoa(int(code))
}

// firstErrorCode returns the first non-zero error code of a response: the
// hot APIs by hand, the rest by walking the message for ErrorCode fields.
func firstErrorCode(resp kmsg.Response) int16 {
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return p.ErrorCode
				}
			}
		}
		return 0
	case *kmsg.FetchResponse:
		if r.ErrorCode != 0 {
			return r.ErrorCode
		}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return p.ErrorCode
				}
			}
		}
		return 0
	}
	return walkErrorCode(reflect.ValueOf(resp), 0)
}

var int16Type = reflect.TypeFor[int16]()

// walkErrorCode looks for a non-zero int16 field named ErrorCode in v, its
// own fields first, then depth-first through nested structs and slices.
func walkErrorCode(v reflect.Value, depth int) int16 {
	if depth > 6 {
		return 0
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return 0
		}
		return walkErrorCode(v.Elem(), depth+1)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Struct {
			return 0 // bytes, strings, numbers
		}
		for i := range v.Len() {
			if c := walkErrorCode(v.Index(i), depth+1); c != 0 {
				return c
			}
		}
	case reflect.Struct:
		if f := v.FieldByName("ErrorCode"); f.IsValid() && f.Type() == int16Type && f.Int() != 0 {
			return int16(f.Int())
		}
		for i := range v.NumField() {
			if f := v.Field(i); f.Kind() == reflect.Slice || f.Kind() == reflect.Struct || f.Kind() == reflect.Pointer {
				if !v.Type().Field(i).IsExported() {
					continue
				}
				if c := walkErrorCode(f, depth+1); c != 0 {
					return c
				}
			}
		}
	}
	return 0
}

// RegisterMetrics registers the agent's Prometheus collectors on reg. Call
// it once per agent.
func (a *Agent) RegisterMetrics(reg prometheus.Registerer) error {
	cs := []prometheus.Collector{a.reqs.requests, a.reqs.latency, &statsCollector{a: a}, a.lag, quotaCollector{a.quotas}}
	if a.auth != nil {
		cs = append(cs, a.auth.Collectors()...)
	}
	cs = append(cs, a.jobMetrics.Collectors()...)
	for _, c := range append(cs, a.ingest.Metrics().Collectors()...) {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

var (
	descProduceBytes        = prometheus.NewDesc("silt_produce_bytes_total", "Bytes of record batches accepted into the write buffer.", nil, nil)
	descProduceBatches      = prometheus.NewDesc("silt_produce_batches_total", "Record batches accepted into the write buffer.", nil, nil)
	descProduceRecords      = prometheus.NewDesc("silt_produce_records_total", "Records in the batches accepted into the write buffer.", nil, nil)
	descFetchBytes          = prometheus.NewDesc("silt_fetch_bytes_total", "Bytes of record batches returned to fetches.", nil, nil)
	descFetchSessions       = prometheus.NewDesc("silt_fetch_sessions", "Fetch sessions (KIP-227) this agent keeps.", nil, nil)
	descFetchSessionsOpened = prometheus.NewDesc("silt_fetch_sessions_opened_total", "Fetch sessions opened.", nil, nil)
	descIncrementalFetches  = prometheus.NewDesc("silt_incremental_fetches_total", "Incremental fetches (KIP-227) served.", nil, nil)
	descFlushes             = prometheus.NewDesc("silt_flushes_total", "Segment objects uploaded.", nil, nil)
	descIndexLookups        = prometheus.NewDesc("silt_index_lookups_total", "Fetch index lookups, by where they were answered (memory or store).", []string{"source"}, nil)
	descCacheHits           = prometheus.NewDesc("silt_cache_hits_total", "Block cache lookups served from memory.", nil, nil)
	descCacheMisses         = prometheus.NewDesc("silt_cache_misses_total", "Block cache lookups that went to the bucket.", nil, nil)
	descCacheEvictions      = prometheus.NewDesc("silt_cache_evictions_total", "Blocks evicted from the block cache.", nil, nil)
	descCacheBytes          = prometheus.NewDesc("silt_cache_bytes", "Bytes held in the block cache.", nil, nil)
	descBufferBytes         = prometheus.NewDesc("silt_buffer_bytes", "Write-buffer budget in use: bytes buffered, uploading or committing.", nil, nil)
	descBufferLimit         = prometheus.NewDesc("silt_buffer_limit_bytes", "Write-buffer budget of frames, batches and segments: buffer.bytes less twice flush.bytes, the room a flush's copy and its garbage take; produce requests wait when it is used up.", nil, nil)
	descRequestBytes        = prometheus.NewDesc("silt_request_bytes", "In-flight request budget in use: frames read but not yet answered, and what they decoded into.", nil, nil)
	descRequestLimit        = prometheus.NewDesc("silt_request_limit_bytes", "In-flight request budget (queued.max.request.bytes); connections stop reading when it is used up.", nil, nil)
	descConnections         = prometheus.NewDesc("silt_connections", "Open Kafka client connections.", nil, nil)
	descTopics              = prometheus.NewDesc("silt_topics", "Topics known to this agent (refreshed with its heartbeat).", nil, nil)
	descPartitions          = prometheus.NewDesc("silt_partitions", "Partitions of the topics known to this agent.", nil, nil)
	descGroups              = prometheus.NewDesc("silt_groups", "Consumer groups this agent coordinates.", nil, nil)
	descExpiredSessions     = prometheus.NewDesc("silt_sasl_expired_connections_killed_total", "Connections closed because a request came after their SASL session expired without re-authentication (KIP-368).", nil, nil)
	descProduceWaiting      = prometheus.NewDesc("silt_produce_waiting", "Produce requests and marker writes waiting for room in the write buffer.", nil, nil)
)

// statsCollector exports the agent's cumulative Stats and its gauges at
// scrape time.
type statsCollector struct{ a *Agent }

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descProduceBytes, descProduceBatches, descProduceRecords, descFetchBytes, descFlushes,
		descIndexLookups, descCacheHits, descCacheMisses, descCacheEvictions, descCacheBytes,
		descBufferBytes, descBufferLimit, descRequestBytes, descRequestLimit, descConnections, descTopics, descPartitions, descGroups, descProduceWaiting,
		descExpiredSessions, descFetchSessions, descFetchSessionsOpened, descIncrementalFetches,
	} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	a, st := c.a, &c.a.stats
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter(descProduceBytes, st.ProducedBytes.Load())
	counter(descProduceBatches, st.ProducedBatchs.Load())
	counter(descProduceRecords, st.ProducedRecord.Load())
	counter(descFetchBytes, st.FetchedBytes.Load())
	counter(descFlushes, st.Flushes.Load())
	counter(descIndexLookups, st.IndexCacheHits.Load(), "memory")
	counter(descIndexLookups, st.IndexQueries.Load(), "store")
	cs := a.CacheStats()
	counter(descCacheHits, cs.Hits)
	counter(descCacheMisses, cs.Misses)
	counter(descCacheEvictions, cs.Evictions)
	gauge(descCacheBytes, cs.Bytes)
	open, opened, increments := a.fetchSessions.stats()
	gauge(descFetchSessions, int64(open))
	counter(descFetchSessionsOpened, opened)
	counter(descIncrementalFetches, increments)
	inUse, limit := a.BufferBytes()
	gauge(descBufferBytes, inUse)
	gauge(descBufferLimit, limit)
	inUse, limit = a.server.InflightRequestBytes()
	gauge(descRequestBytes, inUse)
	gauge(descRequestLimit, limit)
	gauge(descConnections, int64(a.ConnCount()))
	topics, parts := a.topics.Counts()
	gauge(descTopics, int64(topics))
	gauge(descPartitions, int64(parts))
	gauge(descGroups, int64(a.GroupCount()))
	gauge(descProduceWaiting, a.ProducesWaiting())
	counter(descExpiredSessions, a.server.ExpiredSessionsClosed())
}

// CacheStats returns the block cache's counters.
func (a *Agent) CacheStats() cache.Stats { return a.bucket.Stats() }

// ProducesWaiting returns how many produce requests (and marker writes)
// wait for room in the write buffer.
func (a *Agent) ProducesWaiting() int64 { return a.ingest.Waiting() }

// BufferBytes returns the write-buffer budget in use and its limit.
func (a *Agent) BufferBytes() (inUse, limit int64) { return a.ingest.BufferBytes() }

// ConnCount returns the number of open Kafka connections.
func (a *Agent) ConnCount() int { return a.server.ConnCount() }
