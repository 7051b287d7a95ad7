package instrumented

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltstream/silt/metastore"
)

// ops are the operations timed, the values of the op label.
var ops = []string{
	"commit_flush", "record_upload", "index", "index_by_segment", "partitions",
	"topic", "topics", "register_agent", "membership", "commit_offsets",
	"fetch_offsets", "acquire_lease", "schema_version", "replace_index",
}

// Metrics are the collectors shared by every Store built from them.
type Metrics struct {
	duration *prometheus.HistogramVec // op
	errors   *prometheus.CounterVec   // op
}

// NewMetrics creates the metastore metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "silt_metastore_request_duration_seconds",
			Help:    "Latency of metadata-store (Postgres or SQLite) calls on the agent's hot paths, by operation, including failed calls.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5ms .. ~16s
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_metastore_request_errors_total",
			Help: "Metadata-store calls that returned an error, by operation (expected outcomes such as an unknown topic count too).",
		}, []string{"op"}),
	}
	for _, op := range ops {
		m.duration.WithLabelValues(op)
		m.errors.WithLabelValues(op)
	}
	for _, c := range []prometheus.Collector{m.duration, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Store times the hot calls of the store it embeds.
type Store struct {
	metastore.Store
	m *Metrics
}

// watchingStore is a Store over a store that can watch commits.
type watchingStore struct {
	*Store
	w metastore.CommitWatcher
}

// WatchCommits implements metastore.CommitWatcher. It is not timed: it
// runs for as long as the connection lives.
func (s watchingStore) WatchCommits(ctx context.Context, h metastore.CommitHandler) error {
	return s.w.WatchCommits(ctx, h)
}

// AckTopicDeletions implements metastore.CommitWatcher.
func (s watchingStore) AckTopicDeletions(ctx context.Context, agentID string, seq int64) error {
	return s.w.AckTopicDeletions(ctx, agentID, seq)
}

// TopicDeletionSeen implements metastore.CommitWatcher.
func (s watchingStore) TopicDeletionSeen(ctx context.Context, name string) (bool, error) {
	return s.w.TopicDeletionSeen(ctx, name)
}

// Wrap returns next, instrumented with m. The result implements
// metastore.CommitWatcher if next does.
func Wrap(next metastore.Store, m *Metrics) metastore.Store {
	s := &Store{Store: next, m: m}
	if w, ok := next.(metastore.CommitWatcher); ok {
		return watchingStore{Store: s, w: w}
	}
	return s
}

// Unwrap returns the wrapped store.
func (s *Store) Unwrap() metastore.Store { return s.Store }

func (s *Store) observe(op string, start time.Time, err error) {
	s.m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		s.m.errors.WithLabelValues(op).Inc()
	}
}

// CommitFlush implements metastore.Store.
func (s *Store) CommitFlush(ctx context.Context, f metastore.Flush) (metastore.FlushResult, error) {
	start := time.Now()
	r, err := s.Store.CommitFlush(ctx, f)
	s.observe("commit_flush", start, err)
	return r, err
}

// RecordUpload implements metastore.Store.
func (s *Store) RecordUpload(ctx context.Context, key string, agentID string) error {
	start := time.Now()
	err := s.Store.RecordUpload(ctx, key, agentID)
	s.observe("record_upload", start, err)
	return err
}

// Index implements metastore.Store.
func (s *Store) Index(ctx context.Context, tp metastore.TopicPartition, offset int64, maxBytes int64, limit int) ([]metastore.IndexEntry, error) {
	start := time.Now()
	es, err := s.Store.Index(ctx, tp, offset, maxBytes, limit)
	s.observe("index", start, err)
	return es, err
}

// IndexBySegment implements metastore.Store.
func (s *Store) IndexBySegment(ctx context.Context, segmentKey string) ([]metastore.IndexEntry, error) {
	start := time.Now()
	es, err := s.Store.IndexBySegment(ctx, segmentKey)
	s.observe("index_by_segment", start, err)
	return es, err
}

// Partitions implements metastore.Store.
func (s *Store) Partitions(ctx context.Context, topicID metastore.TopicID) ([]metastore.PartitionState, error) {
	start := time.Now()
	ps, err := s.Store.Partitions(ctx, topicID)
	s.observe("partitions", start, err)
	return ps, err
}

// Topic implements metastore.Store.
func (s *Store) Topic(ctx context.Context, name string) (metastore.Topic, error) {
	start := time.Now()
	t, err := s.Store.Topic(ctx, name)
	s.observe("topic", start, err)
	return t, err
}

// Topics implements metastore.Store.
func (s *Store) Topics(ctx context.Context) ([]metastore.Topic, error) {
	start := time.Now()
	ts, err := s.Store.Topics(ctx)
	s.observe("topics", start, err)
	return ts, err
}

// RegisterAgent implements metastore.Store.
func (s *Store) RegisterAgent(ctx context.Context, a metastore.Agent, ttl time.Duration) error {
	start := time.Now()
	err := s.Store.RegisterAgent(ctx, a, ttl)
	s.observe("register_agent", start, err)
	return err
}

// Membership implements metastore.Store.
func (s *Store) Membership(ctx context.Context) (metastore.Membership, error) {
	start := time.Now()
	m, err := s.Store.Membership(ctx)
	s.observe("membership", start, err)
	return m, err
}

// CommitOffsets implements metastore.Store.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []metastore.CommittedOffset) error {
	start := time.Now()
	err := s.Store.CommitOffsets(ctx, group, offsets)
	s.observe("commit_offsets", start, err)
	return err
}

// FetchOffsets implements metastore.Store.
func (s *Store) FetchOffsets(ctx context.Context, group string) ([]metastore.CommittedOffset, error) {
	start := time.Now()
	os, err := s.Store.FetchOffsets(ctx, group)
	s.observe("fetch_offsets", start, err)
	return os, err
}

// AcquireLease implements metastore.Store.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	start := time.Now()
	ok, err := s.Store.AcquireLease(ctx, name, holder, ttl)
	s.observe("acquire_lease", start, err)
	return ok, err
}

// SchemaVersion implements metastore.Store.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	start := time.Now()
	v, err := s.Store.SchemaVersion(ctx)
	s.observe("schema_version", start, err)
	return v, err
}

// ReplaceIndex implements metastore.Store.
func (s *Store) ReplaceIndex(ctx context.Context, r metastore.Replacement) (bool, error) {
	start := time.Now()
	ok, err := s.Store.ReplaceIndex(ctx, r)
	s.observe("replace_index", start, err)
	return ok, err
}
