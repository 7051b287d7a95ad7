package agent

// Client quota enforcement (producer_byte_rate, consumer_byte_rate,
// request_percentage), with Kafka's semantics per agent: each agent
// measures and limits the traffic it serves, as each Kafka broker does,
// so a client's quota is what it may use on every agent it talks to (see
// package quota). The quota that applies to a request is resolved for the
// principal's name (User:alice is user alice) and the request's client id
// in Kafka's order of precedence.
//
//   - Produce: the request's record bytes are recorded when it is handled.
//   - Fetch: the response's record bytes are recorded when it is ready; a
//     response over the quota is sent without records (the bytes are not
//     counted), and a fetch never asks for more than the quota's window
//     holds, or it could never be served.
//   - request_percentage: the time a handler runs, as a percentage of one
//     thread. Waits that hold no thread (durability, long polls) do not
//     count, as in Kafka.
//
// A client over its quota gets throttle_time_ms (the larger of the quota's
// throttle and any the handler reported, e.g. Produce backpressure), and
// its connection is muted for that time (KIP-219, wire.Reply.Throttled).
//
// connection_creation_rate (an ip entity's, else the default ip entity's)
// is enforced when a connection is accepted: one over its IP's rate is
// held unread for the throttle time and closed, as Kafka does (the wire
// server's Config.ThrottleConnection). controller_mutation_rate is stored
// and described but not enforced: an agent has no controller to protect.

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/quota"
	"github.com/siltstream/silt/wire"
)

// quotaUser is the user name quotas are configured for: the principal's
// name without its type.
func (a *Agent) quotaUser(c *wire.Conn) string {
	p := wire.AnonymousPrincipal
	switch {
	case c == nil:
	case a.cfg.PrincipalBuilder != nil:
		p = a.cfg.PrincipalBuilder(c)
	default:
		p = c.Principal()
	}
	if _, name, ok := strings.Cut(p, ":"); ok {
		return name
	}
	return p
}

// withRequestQuota wraps a handler to record its handling time against
// the client's request_percentage quota, and throttle its reply.
func (a *Agent) withRequestQuota(h wire.Handler) wire.Handler {
	return func(ctx context.Context, c *wire.Conn, req kmsg.Request) wire.Reply {
		if !a.quotas.Enabled(quota.Request) {
			return h(ctx, c, req)
		}
		start := time.Now()
		reply := h(ctx, c, req)
		d := a.quotas.Record(quota.Request, a.quotaUser(c), c.ClientID(), quota.HandlingValue(time.Since(start)))
		return reply.Throttled(c, d)
	}
}

// produceThrottle records a Produce request's record bytes against the
// client's producer_byte_rate.
func (a *Agent) produceThrottle(c *wire.Conn, req *kmsg.ProduceRequest) time.Duration {
	if !a.quotas.Enabled(quota.Produce) {
		return 0
	}
	var n int
	for i := range req.Topics {
		for j := range req.Topics[i].Partitions {
			n += len(req.Topics[i].Partitions[j].Records)
		}
	}
	return a.quotas.Record(quota.Produce, a.quotaUser(c), c.ClientID(), float64(n))
}

// capFetchToQuota lowers a fetch's MaxBytes to what the client's
// consumer_byte_rate window holds (Kafka's getMaxValueInQuotaWindow).
func (a *Agent) capFetchToQuota(c *wire.Conn, req *kmsg.FetchRequest) {
	if !a.quotas.Enabled(quota.Fetch) {
		return
	}
	m, ok := a.quotas.MaxInWindow(quota.Fetch, a.quotaUser(c), c.ClientID())
	if !ok {
		return
	}
	m = max(1, min(m, float64(1<<31-1)))
	if req.MaxBytes <= 0 || float64(req.MaxBytes) > m {
		req.MaxBytes = int32(m)
	}
}

// fetchThrottle records a ready Fetch response's record bytes against the
// client's consumer_byte_rate; over the quota, the records are dropped
// from the response (and not counted), as Kafka answers a throttled fetch
// empty.
func (a *Agent) fetchThrottle(c *wire.Conn, resp *kmsg.FetchResponse) time.Duration {
	if !a.quotas.Enabled(quota.Fetch) {
		return 0
	}
	var n int
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			n += len(resp.Topics[i].Partitions[j].RecordBatches)
		}
	}
	d := a.quotas.RecordUnlessThrottled(quota.Fetch, a.quotaUser(c), c.ClientID(), float64(n))
	if d > 0 {
		a.stats.FetchedBytes.Add(-int64(n)) // not returned after all
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				p := &resp.Topics[i].Partitions[j]
				p.RecordBatches, p.AbortedTransactions = noRecords, nil
			}
		}
	}
	return d
}

// quotaWatcher passes the quota notifications of the commit watch to the
// enforcer, and makes it reload whenever the watch (re)starts.
type quotaWatcher struct {
	metastore.CommitWatcher
	quotas *quota.Enforcer
}

func (w quotaWatcher) WatchCommits(ctx context.Context, h metastore.CommitHandler) error {
	ready := h.Ready
	h.Ready = func(seq int64) error {
		w.quotas.Changed()
		if ready != nil {
			return ready(seq)
		}
		return nil
	}
	h.QuotasChanged = w.quotas.Changed
	return w.CommitWatcher.WatchCommits(ctx, h)
}

// QuotaThrottled returns the total throttle time this agent has handed
// out for client quotas of type t (exported as
// silt_quota_throttle_seconds_total).
func (a *Agent) QuotaThrottled(t quota.Type) time.Duration { return a.quotas.Throttled(t) }

var descQuotaThrottle = prometheus.NewDesc("silt_quota_throttle_seconds_total",
	"Throttle time handed out to clients over a client quota, by quota type: produce (producer_byte_rate), fetch (consumer_byte_rate), request (request_percentage), each as throttle_time_ms with the connection muted; connection (connection_creation_rate), as new connections held and closed.",
	[]string{"type"}, nil)

// quotaCollector exports the throttle time per quota type; no series is
// labelled by user or client id.
type quotaCollector struct{ q *quota.Enforcer }

func (c quotaCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descQuotaThrottle }

func (c quotaCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range []quota.Type{quota.Produce, quota.Fetch, quota.Request, quota.Connection} {
		ch <- prometheus.MustNewConstMetric(descQuotaThrottle, prometheus.CounterValue, c.q.Throttled(t).Seconds(), t.String())
	}
}

// ClientQuotaBound returns the quota of type t this agent applies to
// (user, clientID), as it last loaded them; admin tools and tests use it.
func (a *Agent) ClientQuotaBound(t quota.Type, user, clientID string) (float64, bool) {
	return a.quotas.Bound(t, user, clientID)
}
