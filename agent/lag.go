package agent

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// lagLease names the lease whose holder computes consumer-group lag, so one
// agent in the cluster exports it and dashboards do not sum duplicates.
const lagLease = "metrics/consumer-lag"

// lagInterval is how often the elected agent recomputes lag.
const lagInterval = 15 * time.Second

// lagReport is one computation: total lag per group (the sum over its
// partitions of high watermark minus committed offset), and when.
type lagReport struct {
	at  time.Time
	lag map[string]int64
}

// lagReporter computes consumer-group lag on the agent holding lagLease.
// Series are per group, never per partition, so their number stays bounded
// by the number of groups.
type lagReporter struct {
	a    *Agent
	last atomic.Pointer[lagReport] // nil while this agent is not elected
}

func (l *lagReporter) run(ctx context.Context) {
	t := time.NewTicker(lagInterval)
	defer t.Stop()
	for {
		held, err := l.a.store.AcquireLease(ctx, lagLease, l.a.cfg.ID, 3*lagInterval)
		if err == nil && held {
			if r, err := l.compute(ctx); err == nil {
				l.last.Store(r)
			} else if ctx.Err() == nil {
				l.a.log.Warn("consumer lag computation failed", "err", err)
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

func (l *lagReporter) compute(ctx context.Context) (*lagReport, error) {
	a := l.a
	groups, err := a.store.Groups(ctx)
	if err != nil {
		return nil, err
	}
	r := &lagReport{at: time.Now(), lag: make(map[string]int64, len(groups))}
	for _, g := range groups {
		offs, err := a.store.FetchOffsets(ctx, g.ID)
		if err != nil {
			return nil, err
		}
		var total int64
		for _, o := range offs {
			t, err := a.topics.get(ctx, o.Topic)
			if err != nil || o.Partition < 0 || int(o.Partition) >= len(t.parts) || o.Offset < 0 {
				continue // a deleted topic or partition has no lag
			}
			p := t.parts[o.Partition]
			if err := a.topics.load(ctx, p); err != nil {
				continue
			}
			if hw, _ := p.offsets(); hw > o.Offset {
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
func (l *lagReporter) Describe(ch chan<- *prometheus.Desc) {
	ch <- descGroupLag
	ch <- descGroupLagAt
}

// Collect implements prometheus.Collector.
func (l *lagReporter) Collect(ch chan<- prometheus.Metric) {
	r := l.last.Load()
	if r == nil {
		return
	}
	for g, v := range r.lag {
		ch <- prometheus.MustNewConstMetric(descGroupLag, prometheus.GaugeValue, float64(v), g)
	}
	ch <- prometheus.MustNewConstMetric(descGroupLagAt, prometheus.GaugeValue, float64(r.at.Unix()))
}

// GroupCount returns how many consumer groups this agent coordinates
// (exported as silt_groups).
func (a *Agent) GroupCount() int {
	return a.groups.Count()
}

// ComputeConsumerLag computes consumer-group lag now and exports it, as the
// elected agent does every lagInterval; admin tools and tests use it.
func (a *Agent) ComputeConsumerLag(ctx context.Context) (map[string]int64, error) {
	r, err := a.lag.compute(ctx)
	if err != nil {
		return nil, err
	}
	a.lag.last.Store(r)
	return r.lag, nil
}
