package quota

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siltstream/silt/metastore"
)

// Store is what the Enforcer reads: every stored quota.
type Store interface {
	ClientQuotas(ctx context.Context) ([]metastore.ClientQuota, error)
}

// Type is a quota the agent enforces, per (user, client id) or, for
// Connection, per IP.
type Type int

const (
	Produce    Type = iota // producer_byte_rate: bytes of Produce requests
	Fetch                  // consumer_byte_rate: bytes of Fetch responses
	Request                // request_percentage: handling time, percent of one thread
	Connection             // connection_creation_rate: new connections per second, per IP
	numTypes
)

// Key is the quota key that configures t.
func (t Type) Key() string {
	switch t {
	case Produce:
		return ProducerByteRate
	case Fetch:
		return ConsumerByteRate
	case Connection:
		return ConnectionCreationRate
	}
	return RequestPercentage
}

// String names t for metrics: produce, fetch, request.
func (t Type) String() string {
	switch t {
	case Produce:
		return "produce"
	case Fetch:
		return "fetch"
	case Connection:
		return "connection"
	}
	return "request"
}

// Bounds on the sensors kept. Kafka drops a sensor an hour after its
// last use; an agent also never keeps more than maxSensors, evicting the
// least recently used one (whose client then starts a fresh window), so
// clients inventing client ids cannot grow its memory.
const (
	inactiveExpiry = time.Hour
	maxSensors     = 10000
)

// Config is the Enforcer's configuration.
type Config struct {
	// RefreshInterval is how often Run re-reads the quotas even without a
	// notification, so a lost one heals. Default 10s.
	RefreshInterval time.Duration
	// Now is the clock; tests replace it. Default time.Now.
	Now func() time.Time
}

// Enforcer measures each (user, client id)'s use against the quota that
// applies to it on this agent, and says how long to throttle. Until the
// first Reload it knows no quota and throttles nothing. Safe for
// concurrent use.
type Enforcer struct {
	store   Store
	every   time.Duration
	now     func() time.Time
	img     atomic.Pointer[image]
	changed chan struct{}

	// As in auth/acl: a reload installs its image only if no reload that
	// started later installed one first.
	reloads   atomic.Uint64
	installMu sync.Mutex // guards installed
	installed uint64

	mu      sync.Mutex // guards sensors
	sensors map[sensorKey]*sensor

	throttled [numTypes]atomic.Int64 // total throttle time handed out, nanoseconds
}

// image is one load of the stored quotas.
type image struct {
	all   []metastore.ClientQuota
	bound [numTypes]map[metastore.QuotaEntity]float64
}

// sensorKey is what Kafka's metric tags name: the (user, client id) pair
// a rate is measured for, with a component blank when the quota that
// applies is shared by every client id of the user (or every user of the
// client id). Connection sensors hold the IP in user.
type sensorKey struct {
	typ      Type
	user     string
	clientID string
}

type sensor struct {
	rate     *rate
	lastUsed time.Time
}

// New returns an Enforcer over store; call Reload (or Run) to load.
func New(cfg Config, store Store) *Enforcer {
	e := &Enforcer{
		store:   store,
		every:   cfg.RefreshInterval,
		now:     cfg.Now,
		changed: make(chan struct{}, 1),
		sensors: make(map[sensorKey]*sensor),
	}
	if e.every <= 0 {
		e.every = 10 * time.Second
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.img.Store(newImage(nil))
	return e
}

func newImage(qs []metastore.ClientQuota) *image {
	img := &image{all: qs}
	for t := Type(0); t < numTypes; t++ {
		img.bound[t] = make(map[metastore.QuotaEntity]float64)
	}
	for _, q := range qs {
		for t := Type(0); t < numTypes; t++ {
			v, ok := q.Values[t.Key()]
			if !ok {
				continue
			}
			e := q.Entity
			if e.IP.Kind == metastore.QuotaNamed {
				// Matched against the connection's address in
				// canonical form.
				ip, err := netip.ParseAddr(e.IP.Name)
				if err != nil {
					continue
				}
				e.IP.Name = ip.Unmap().String()
			}
			img.bound[t][e] = v
		}
	}
	return img
}

// Enabled reports whether any quota of type t is configured: without
// one, callers need not work out what to record.
func (e *Enforcer) Enabled(t Type) bool { return len(e.img.Load().bound[t]) > 0 }

// Quotas returns the quotas as last loaded.
func (e *Enforcer) Quotas() []metastore.ClientQuota { return e.img.Load().all }

// Reload reads every quota and installs them, unless a reload that
// started later already did.
func (e *Enforcer) Reload(ctx context.Context) error {
	n := e.reloads.Add(1)
	qs, err := e.store.ClientQuotas(ctx)
	if err != nil {
		return fmt.Errorf("reload client quotas: %w", err)
	}
	img := newImage(qs)
	e.installMu.Lock()
	defer e.installMu.Unlock()
	if n > e.installed {
		e.img.Store(img)
		e.installed = n
	}
	return nil
}

// Changed tells Run the stored quotas changed; it never blocks.
func (e *Enforcer) Changed() {
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

// Run reloads on every Changed and every RefreshInterval, and drops
// sensors unused for an hour, until ctx ends. Failures go to onErr; a
// failed reload keeps the last quotas.
func (e *Enforcer) Run(ctx context.Context, onErr func(error)) {
	t := time.NewTicker(e.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.changed:
		case <-t.C:
			e.expire()
		}
		if err := e.Reload(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
	}
}

// expire drops sensors unused for inactiveExpiry.
func (e *Enforcer) expire() {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, s := range e.sensors {
		if now.Sub(s.lastUsed) >= inactiveExpiry {
			delete(e.sensors, k)
		}
	}
}

// Sensors returns how many rate sensors are kept.
func (e *Enforcer) Sensors() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.sensors)
}

// resolve finds the quota of type t for (user, clientID) in Kafka's order
// of precedence, and the key of the sensor it is measured in:
//
//  1. user and client id        5. default user, default client id
//  2. user, default client id   6. default user
//  3. user                      7. client id
//  4. default user, client id   8. default client id
func (img *image) resolve(t Type, user, clientID string) (bound float64, key sensorKey, ok bool) {
	bounds := img.bound[t]
	if len(bounds) == 0 || t == Connection {
		return 0, key, false
	}
	u, du := metastore.Named(user), metastore.DefaultName()
	c, dc := metastore.Named(clientID), metastore.DefaultName()
	both := sensorKey{typ: t, user: user, clientID: clientID}
	userOnly := sensorKey{typ: t, user: user}
	clientOnly := sensorKey{typ: t, clientID: clientID}
	order := [...]struct {
		e metastore.QuotaEntity
		k sensorKey
	}{
		{metastore.QuotaEntity{User: u, ClientID: c}, both},
		{metastore.QuotaEntity{User: u, ClientID: dc}, both},
		{metastore.QuotaEntity{User: u}, userOnly},
		{metastore.QuotaEntity{User: du, ClientID: c}, both},
		{metastore.QuotaEntity{User: du, ClientID: dc}, both},
		{metastore.QuotaEntity{User: du}, userOnly},
		{metastore.QuotaEntity{ClientID: c}, clientOnly},
		{metastore.QuotaEntity{ClientID: dc}, clientOnly},
	}
	for _, o := range order {
		if b, found := bounds[o.e]; found {
			return b, o.k, true
		}
	}
	return 0, key, false
}

// Bound returns the quota of type t that applies to (user, clientID), if
// any.
func (e *Enforcer) Bound(t Type, user, clientID string) (float64, bool) {
	b, _, ok := e.img.Load().resolve(t, user, clientID)
	return b, ok
}

// MaxInWindow is the most that can be recorded at once without being
// throttled for certain (Kafka's getMaxValueInQuotaWindow): a Fetch
// response larger than this would never be served. ok is false without
// a quota.
func (e *Enforcer) MaxInWindow(t Type, user, clientID string) (max float64, ok bool) {
	b, ok := e.Bound(t, user, clientID)
	if !ok {
		return 0, false
	}
	return b * (numSamples - 1) * sampleSpan.Seconds(), true
}

// Record records v (bytes, or for Request the percentage-seconds of
// handling time: see HandlingValue) for (user, clientID) against its quota
// of type t, and returns how long the client is to be throttled: zero
// within the quota. Without a quota nothing is recorded.
func (e *Enforcer) Record(t Type, user, clientID string, v float64) time.Duration {
	return e.record(t, user, clientID, v, false)
}

// RecordUnlessThrottled is Record, except that when the client is to be
// throttled v is taken back out again: Kafka does this for Fetch, whose
// throttled response carries no data.
func (e *Enforcer) RecordUnlessThrottled(t Type, user, clientID string, v float64) time.Duration {
	return e.record(t, user, clientID, v, true)
}

func (e *Enforcer) record(t Type, user, clientID string, v float64, undo bool) time.Duration {
	bound, key, ok := e.img.Load().resolve(t, user, clientID)
	if !ok {
		return 0
	}
	return e.recordKey(t, key, bound, v, undo)
}

func (e *Enforcer) recordKey(t Type, key sensorKey, bound, v float64, undo bool) time.Duration {
	now := e.now()
	e.mu.Lock()
	s := e.sensors[key]
	if s == nil {
		if len(e.sensors) >= maxSensors {
			e.evictLocked()
		}
		s = &sensor{rate: newRate(now)}
		e.sensors[key] = s
	}
	s.lastUsed = now
	s.rate.record(v, now)
	d := s.rate.throttle(bound, now)
	if d > 0 && undo {
		s.rate.record(-v, now)
	}
	e.mu.Unlock()
	if t == Request {
		// Kafka bounds request-quota throttles by one sample's span.
		d = min(d, sampleSpan)
	}
	d = min(d, time.Duration(math.MaxInt32)*time.Millisecond)
	if d > 0 {
		e.throttled[t].Add(int64(d))
	}
	return d
}

// RecordConnection records a new connection from ip against its
// connection_creation_rate (the IP's own, else the default IP entity's;
// Kafka's broker-wide max.connection.creation.rate is not a quota here),
// and returns how long to hold the connection before closing it: zero
// within the quota.
func (e *Enforcer) RecordConnection(ip netip.Addr) time.Duration {
	bounds := e.img.Load().bound[Connection]
	if len(bounds) == 0 {
		return 0
	}
	name := ip.Unmap().String()
	bound, ok := bounds[metastore.QuotaEntity{IP: metastore.Named(name)}]
	if !ok {
		if bound, ok = bounds[metastore.QuotaEntity{IP: metastore.DefaultName()}]; !ok {
			return 0
		}
	}
	// A refused connection is not counted, as in Kafka.
	return e.recordKey(Connection, sensorKey{typ: Connection, user: name}, bound, 1, true)
}

// evictLocked drops the least recently used sensor.
func (e *Enforcer) evictLocked() {
	var oldest sensorKey
	var at time.Time
	first := true
	for k, s := range e.sensors {
		if first || s.lastUsed.Before(at) {
			oldest, at, first = k, s.lastUsed, false
		}
	}
	delete(e.sensors, oldest)
}

// Throttled returns the total throttle time Record has handed out for t.
func (e *Enforcer) Throttled(t Type) time.Duration { return time.Duration(e.throttled[t].Load()) }

// HandlingValue converts handling time to what request_percentage
// measures: percent of one thread, so a second of handling recorded in a
// second is 100.
func HandlingValue(d time.Duration) float64 { return d.Seconds() * 100 }
