package agent

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/siltstream/silt/metastore"
)

// broker is one live agent as clients see it.
type broker struct {
	id     string // agent id
	nodeID int32
	host   string
	port   int32
	zone   string
}

// view is the agent's picture of the cluster: the live agents and the
// membership epoch, which is every partition's leader epoch.
type view struct {
	brokers []broker // ordered by agent id; always includes this agent
	epoch   int64
}

// membership keeps the view current: it registers this agent, heartbeats,
// and rereads the live agents from the store.
type membership struct {
	a       *Agent
	leaving atomic.Bool // set by leave: heartbeats must not re-register us
	cur     atomic.Pointer[view]
	ttl     time.Duration
	beat    time.Duration
}

func newMembership(a *Agent) *membership {
	m := &membership{a: a, ttl: a.cfg.MembershipTTL, beat: a.cfg.Heartbeat}
	m.cur.Store(&view{brokers: []broker{a.self()}, epoch: 0})
	return m
}

// view returns the current view.
func (m *membership) view() *view { return m.cur.Load() }

// join registers this agent and reads the membership once.
func (m *membership) join(ctx context.Context) error {
	a := m.a
	if err := a.store.RegisterAgent(ctx, metastore.Agent{ID: a.cfg.ID, Addr: a.cfg.Advertise, Zone: a.cfg.Zone}, m.ttl); err != nil {
		return err
	}
	return m.refresh(ctx)
}

// refresh rereads the live agents.
func (m *membership) refresh(ctx context.Context) error {
	ms, err := m.a.store.Membership(ctx)
	if err != nil {
		return err
	}
	v := &view{epoch: ms.Epoch}
	self := false
	for _, ag := range ms.Agents {
		b, ok := brokerOf(ag)
		if !ok {
			m.a.log.Warn("agent has a bad advertised address; not listing it", "agent", ag.ID, "addr", ag.Addr)
			continue
		}
		self = self || ag.ID == m.a.cfg.ID
		v.brokers = append(v.brokers, b)
	}
	if !self {
		// Our lease lapsed (a long pause, a store outage): we still serve,
		// so we still list ourselves; the next heartbeat re-registers us.
		v.brokers = append(v.brokers, m.a.self())
		slices.SortFunc(v.brokers, func(x, y broker) int { return strings.Compare(x.id, y.id) })
	}
	old := m.cur.Swap(v)
	if old.epoch != v.epoch {
		m.a.log.Info("cluster membership changed", "epoch", v.epoch, "agents", len(v.brokers))
	}
	return nil
}

func brokerOf(ag metastore.Agent) (broker, bool) {
	host, portStr, err := net.SplitHostPort(ag.Addr)
	if err != nil {
		return broker{}, false
	}
	port, err := strconv.ParseInt(portStr, 10, 32)
	if err != nil {
		return broker{}, false
	}
	return broker{id: ag.ID, nodeID: nodeIDOf(ag.ID), host: host, port: int32(port), zone: ag.Zone}, true
}

// run heartbeats until ctx ends, and refreshes the topic cache now and
// then so topics created, grown or deleted through other agents show up.
func (m *membership) run(ctx context.Context) {
	t := time.NewTicker(m.beat)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.leaving.Load() {
			return
		}
		if err := m.join(ctx); err != nil && ctx.Err() == nil {
			m.a.log.Warn("heartbeat failed", "err", err)
		}
		if n%5 == 4 {
			if err := m.a.topics.refresh(ctx); err != nil && ctx.Err() == nil {
				m.a.log.Warn("refresh topics failed", "err", err)
			}
		}
	}
}

// leave deregisters this agent, so clients stop being sent here.
func (m *membership) leave(ctx context.Context) {
	m.leaving.Store(true)
	if err := m.a.store.DeregisterAgent(ctx, m.a.cfg.ID); err != nil {
		m.a.log.Warn("deregister failed; the lease will lapse instead", "err", err)
	}
}

// self is this agent as a broker.
func (a *Agent) self() broker {
	return broker{id: a.cfg.ID, nodeID: a.nodeID, host: a.host, port: a.port, zone: a.cfg.Zone}
}

// rendezvous picks, among brokers, the one with the highest hash of (key,
// agent id): stable under churn, since only keys owned by an agent that
// left (or won by one that joined) move.
func rendezvous(brokers []broker, key []byte) broker {
	var best broker
	var bestScore uint64
	for i, b := range brokers {
		h := fnv.New64a()
		h.Write(key)
		h.Write([]byte{0})
		h.Write([]byte(b.id))
		if s := mix64(h.Sum64()); i == 0 || s > bestScore {
			best, bestScore = b, s
		}
	}
	return best
}

// mix64 is a finalizer (splitmix64) that spreads FNV's weak low bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// leaderFor returns the agent that leads tp for a client in zone (empty:
// no preference). Leadership only routes clients and keeps caches warm: any
// agent accepts produce and fetch for any partition.
func (v *view) leaderFor(tp metastore.TopicPartition, zone string) broker {
	candidates := v.brokers
	if zone != "" {
		var inZone []broker
		for _, b := range v.brokers {
			if b.zone == zone {
				inZone = append(inZone, b)
			}
		}
		if len(inZone) > 0 {
			candidates = inZone
		}
	}
	var key [20]byte
	copy(key[:16], tp.Topic[:])
	binary.BigEndian.PutUint32(key[16:], uint32(tp.Partition))
	return rendezvous(candidates, key[:])
}

// coordinatorFor returns the live agent that coordinates key (a consumer
// group id or a transactional id). Every agent computes the same answer from
// the same membership, so clients are routed consistently; state is fenced
// in the metastore, so two agents that briefly disagree cannot corrupt it.
func (a *Agent) coordinatorFor(key string) broker {
	return rendezvous(a.members.view().brokers, []byte("coordinator\x00"+key))
}

// isCoordinator reports whether this agent coordinates key.
func (a *Agent) isCoordinator(key string) bool {
	return a.coordinatorFor(key).nodeID == a.nodeID
}

// clientZone is the zone a client asked for: "silt_az=<zone>" anywhere in
// its client.id (separated by commas or spaces), as WarpStream and others do.
func clientZone(clientID string) string {
	for _, f := range strings.FieldsFunc(clientID, func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
		if z, ok := strings.CutPrefix(f, "silt_az="); ok {
			return z
		}
	}
	return ""
}
