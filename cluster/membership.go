package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siltstream/silt/metastore"
)

// Config is what Membership needs to register this agent.
type Config struct {
	AgentID string
	// NodeID is the Kafka node id to answer as; nil: derived from AgentID
	// (NodeID). Either way it is recorded, and no two live agents hold one.
	NodeID    *int32
	Advertise string // host:port given to clients
	Zone      string
	// Listeners are the advertised address of each Kafka listener, by
	// name; empty: one PLAINTEXT listener at Advertise.
	Listeners []metastore.AgentListener
	// Heartbeat is how often the registration is renewed; TTL is how long
	// it lives without renewal before other agents drop it.
	Heartbeat time.Duration
	TTL       time.Duration
	Logger    *slog.Logger
}

// Membership keeps this agent registered and its View current.
type Membership struct {
	cfg     Config
	store   metastore.ClusterStore
	log     *slog.Logger
	self    Broker
	regMu   sync.Mutex  // registrations (Join) and Leave take turns
	leaving atomic.Bool // set by Leave: heartbeats must not re-register us
	cur     atomic.Pointer[View]
	changed chan struct{} // Changed: reread the membership now
}

// NewMembership returns a Membership whose first view lists only this agent;
// Join reads the real one.
func NewMembership(cfg Config, store metastore.ClusterStore) (*Membership, error) {
	self, ok := brokerOf(cfg.agent())
	if !ok {
		return nil, fmt.Errorf("advertise: %q is not host:port with a numeric port", cfg.Advertise)
	}
	if err := checkListeners(cfg.Listeners); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Membership{cfg: cfg, store: store, log: cfg.Logger, self: self, changed: make(chan struct{}, 1)}
	m.cur.Store(&View{Brokers: []Broker{self}})
	return m, nil
}

// Self is this agent as a broker.
func (m *Membership) Self() Broker { return m.self }

// View returns the current view.
func (m *Membership) View() *View { return m.cur.Load() }

// CoordinatorFor returns the agent coordinating key in the current view.
func (m *Membership) CoordinatorFor(key string) Broker { return m.View().CoordinatorFor(key) }

// IsCoordinator reports whether this agent coordinates key. A leaving
// agent coordinates nothing: its clients get NOT_COORDINATOR and find the
// next coordinator while it is still there to answer them.
func (m *Membership) IsCoordinator(key string) bool {
	return !m.leaving.Load() && m.CoordinatorFor(key).NodeID == m.self.NodeID
}

// Join registers this agent and reads the membership once.
func (m *Membership) Join(ctx context.Context) error {
	// A heartbeat under way when Leave deregisters must not register us
	// again after it: registrations and the leave take turns.
	m.regMu.Lock()
	if m.leaving.Load() {
		m.regMu.Unlock()
		return nil
	}
	err := m.store.RegisterAgent(ctx, m.cfg.agent(), m.cfg.TTL)
	m.regMu.Unlock()
	if err != nil {
		return err
	}
	return m.refresh(ctx)
}

// Start registers this agent for the first time, like Join, except when
// another agent holds its node id. A predecessor that stopped without
// leaving (killed) holds it until its lease lapses: Start waits for that
// (until the lease's end by the store's clock, at least TTL, plus a TTL),
// within ctx. A holder whose lease is renewed meanwhile is alive, and Start
// returns the *metastore.NodeIDTakenError at once. Other errors are
// returned as Join returns them (heartbeats retry).
func (m *Membership) Start(ctx context.Context) error {
	err := m.Join(ctx)
	var taken *metastore.NodeIDTakenError
	if !errors.As(err, &taken) {
		return err
	}
	first := taken.Holder
	m.log.Warn("node id held by another agent; waiting for its lease to lapse",
		"node_id", taken.NodeID, "holder", first.ID, "holder_addr", first.Addr, "lease_until", first.Expires)
	// The lease ends by the store's clock; a TTL more covers a skew
	// between its clock and ours. Only an attempt begun after that counts
	// as proof that the holder lives: a slow one begun before may still
	// have seen the old lease.
	deadline := time.Now().Add(max(time.Until(first.Expires), m.cfg.TTL) + m.cfg.TTL)
	for {
		t := time.NewTimer(max(min(m.cfg.Heartbeat, time.Until(deadline)), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		begun := time.Now()
		err = m.Join(ctx)
		if !errors.As(err, &taken) {
			return err
		}
		if h := taken.Holder; h.ID != "" && (h.ID != first.ID || h.Expires.After(first.Expires)) {
			return err // renewed, or another holder: a live agent has it
		}
		if !begun.Before(deadline) {
			return err
		}
	}
}

// Refresh rereads the live agents now, rather than at the next heartbeat.
// Coordinators call it before taking a group over, so that they act on the
// store's current epoch and not on a view other agents have moved past.
func (m *Membership) Refresh(ctx context.Context) error { return m.refresh(ctx) }

// refresh rereads the live agents. Views only move forward: a read that
// an overlapping one overtook does not replace the newer view.
func (m *Membership) refresh(ctx context.Context) error {
	ms, err := m.store.Membership(ctx)
	if err != nil {
		return err
	}
	v := &View{Epoch: ms.Epoch}
	self := false
	for _, ag := range ms.Agents {
		b, ok := brokerOf(ag)
		if !ok {
			m.log.Warn("agent has a bad advertised address; not listing it", "agent", ag.ID, "addr", ag.Addr)
			continue
		}
		self = self || ag.ID == m.cfg.AgentID
		v.Brokers = append(v.Brokers, b)
	}
	if !self && !m.leaving.Load() {
		// Our lease lapsed (a long pause, a store outage): we still serve,
		// so we still list ourselves; the next heartbeat re-registers us.
		v.Brokers = append(v.Brokers, m.self)
		slices.SortFunc(v.Brokers, func(x, y Broker) int { return strings.Compare(x.ID, y.ID) })
	}
	for {
		old := m.cur.Load()
		if v.Epoch < old.Epoch {
			return nil
		}
		if m.cur.CompareAndSwap(old, v) {
			if old.Epoch != v.Epoch {
				m.log.Info("cluster membership changed", "epoch", v.Epoch, "agents", len(v.Brokers))
			}
			return nil
		}
	}
}

func brokerOf(ag metastore.Agent) (Broker, bool) {
	host, portStr, err := net.SplitHostPort(ag.Addr)
	if err != nil {
		return Broker{}, false
	}
	port, err := strconv.ParseInt(portStr, 10, 32)
	if err != nil || port < 0 {
		return Broker{}, false
	}
	node := NodeID(ag.ID) // an agent from before node ids were recorded
	if ag.NodeID != nil {
		node = *ag.NodeID
	}
	return Broker{ID: ag.ID, NodeID: node, Host: host, Port: int32(port), Zone: ag.Zone,
		listeners: listenersOf(ag)}, true
}

// Changed tells Run the membership changed (a store notification): it
// rereads it at once instead of at the next heartbeat, so agents agree on
// the view within a notification's delay — clients that ask one agent for
// a coordinator and another for its address find it. It never blocks.
func (m *Membership) Changed() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// Run heartbeats every Heartbeat, and rereads the membership on Changed,
// until ctx ends or Leave is called.
func (m *Membership) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.changed:
			if err := m.refresh(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("reread membership after a change", "err", err)
			}
			continue
		case <-t.C:
		}
		if m.leaving.Load() {
			return
		}
		if err := m.Join(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("heartbeat failed", "err", err)
		}
	}
}

// Leave deregisters this agent, so clients stop being sent here. From
// then on its own view lists only the others: its Metadata answers send
// clients to them, and it coordinates nothing.
func (m *Membership) Leave(ctx context.Context) {
	m.regMu.Lock()
	m.leaving.Store(true)
	m.regMu.Unlock()
	if err := m.store.DeregisterAgent(ctx, m.cfg.AgentID); err != nil {
		m.log.Warn("deregister failed; the lease will lapse instead", "err", err)
	}
	if err := m.refresh(ctx); err != nil {
		m.log.Warn("read membership after leaving", "err", err)
	}
	if v := m.View(); len(v.Brokers) == 0 {
		// The last agent: nobody else to send clients to.
		m.cur.Store(&View{Brokers: []Broker{m.self}, Epoch: v.Epoch})
	}
}
