package jobs

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltstream/silt/metastore"
)

// lagLease names the lease whose holder computes consumer-group lag, so one
// agent in the cluster exports it and dashboards do not sum duplicates.
const lagLease = "metrics/consumer-lag"

// LagInterval is how often the elected agent recomputes lag.
const LagInterval = 15 * time.Second

// LagStore is what the lag reporter reads.
type LagStore interface {
	metastore.LeaseStore
	Groups(ctx context.Context) ([]metastore.GroupSummary, error)
	FetchOffsets(ctx context.Context, group string) ([]metastore.CommittedOffset, error)
	Topic(ctx context.Context, name string) (metastore.Topic, error)
	Partitions(ctx context.Context, topicID metastore.TopicID) ([]metastore.PartitionState, error)
}

// lagReport is one computation: total lag per group (the sum over its
// partitions of high watermark minus committed offset), and when.
type lagReport struct {
	at  time.Time
	lag map[string]int64
}

// LagReporter computes consumer-group lag on the agent holding the lag
// lease and exports it as a Prometheus collector. Series are per group,
// never per partition, so their number stays bounded by the number of
// groups. High watermarks come from the store, not an agent's cache.
type LagReporter struct {
	AgentID string
	Store   LagStore
	Log     *slog.Logger

	last atomic.Pointer[lagReport] // nil while this agent is not elected
}

// Run computes lag every LagInterval while this agent holds the lease,
// until ctx ends.
func (l *LagReporter) Run(ctx context.Context) {
	t := time.NewTicker(LagInterval)
	defer t.Stop()
	for {
		held, err := l.Store.AcquireLease(ctx, lagLease, l.AgentID, 3*LagInterval)
		if err == nil && held {
			if r, err := l.compute(ctx); err == nil {
				l.last.Store(r)
			} else if ctx.Err() == nil {
				l.Log.Warn("consumer lag computation failed", "err", err)
			}
		} else {
			l.last.Store(nil)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ComputeNow computes lag at once and exports it, as the elected agent does
// every LagInterval; admin tools and tests use it.
func (l *LagReporter) ComputeNow(ctx context.Context) (map[string]int64, error) {
	r, err := l.compute(ctx)
	if err != nil {
		return nil, err
	}
	l.last.Store(r)
	return r.lag, nil
}

func (l *LagReporter) compute(ctx context.Context) (*lagReport, error) {
	groups, err := l.Store.Groups(ctx)
	if err != nil {
		return nil, err
	}
	r := &lagReport{at: time.Now(), lag: make(map[string]int64, len(groups))}
	hws := make(map[string][]metastore.PartitionState) // per topic name, read once per computation
	for _, g := range groups {
		offs, err := l.Store.FetchOffsets(ctx, g.ID)
		if err != nil {
			return nil, err
		}
		var total int64
		for _, o := range offs {
			states, ok := hws[o.Topic]
			if !ok {
				states = nil
				if t, err := l.Store.Topic(ctx, o.Topic); err == nil {
					if states, err = l.Store.Partitions(ctx, t.ID); err != nil {
						return nil, err
					}
				}
				hws[o.Topic] = states
			}
			if o.Partition < 0 || int(o.Partition) >= len(states) || o.Offset < 0 {
				continue // a deleted topic or partition has no lag
			}
			if hw := states[o.Partition].HighWatermark; hw > o.Offset {
				total += hw - o.Offset
			}
		}
		r.lag[g.ID] = total
	}
	return r, nil
}

var (
	descGroupLag   = prometheus.NewDesc("silt_consumer_group_lag", "Records behind the high watermark, summed over a consumer group's committed partitions; exported only by the agent elected to compute it.", []string{"group"}, nil)
	descGroupLagAt = prometheus.NewDesc("silt_consumer_group_lag_computed_timestamp_seconds", "When the exported consumer-group lag was computed.", nil, nil)
)

// Describe implements prometheus.Collector.
func (l *LagReporter) Describe(ch chan<- *prometheus.Desc) {
	ch <- descGroupLag
	ch <- descGroupLagAt
}

// Collect implements prometheus.Collector.
func (l *LagReporter) Collect(ch chan<- prometheus.Metric) {
	r := l.last.Load()
	if r == nil {
		return
	}
	for g, v := range r.lag {
		ch <- prometheus.MustNewConstMetric(descGroupLag, prometheus.GaugeValue, float64(v), g)
	}
	ch <- prometheus.MustNewConstMetric(descGroupLagAt, prometheus.GaugeValue, float64(r.at.Unix()))
}
