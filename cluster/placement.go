package cluster

import (
	"encoding/binary"
	"hash/fnv"
	"strings"

	"github.com/siltstream/silt/metastore"
)

// Broker is one live agent as Kafka clients see it.
type Broker struct {
	ID     string // agent id
	NodeID int32
	Host   string
	Port   int32
	Zone   string
	// listeners are the broker's advertised listeners as the metastore
	// encodes them (a string keeps Broker comparable); see Endpoint.
	listeners string
}

// View is a picture of the cluster: the live agents and the membership
// epoch, which is every partition's leader epoch. Views are never modified
// once published.
type View struct {
	Brokers []Broker // ordered by agent id
	Epoch   int64
}

// NodeID derives a stable, non-negative Kafka node id from an agent id.
func NodeID(agentID string) int32 {
	h := fnv.New32a()
	h.Write([]byte(agentID))
	return int32(h.Sum32() & 0x7fffffff)
}

// LeaderEpoch is the membership epoch as Kafka's int32 leader epoch.
func (v *View) LeaderEpoch() int32 { return int32(v.Epoch & 0x7fffffff) }

// LeaderFor returns the agent that leads tp for a client in zone (empty:
// no preference). Leadership only routes clients and keeps caches warm: any
// agent accepts produce and fetch for any partition.
func (v *View) LeaderFor(tp metastore.TopicPartition, zone string) Broker {
	candidates := v.Brokers
	if zone != "" {
		var inZone []Broker
		for _, b := range v.Brokers {
			if b.Zone == zone {
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

// CoordinatorFor returns the agent that coordinates key (a consumer group
// id or a transactional id). Every agent computes the same answer from the
// same view, so clients are routed consistently.
func (v *View) CoordinatorFor(key string) Broker {
	return rendezvous(v.Brokers, []byte("coordinator\x00"+key))
}

// rendezvous picks, among brokers, the one with the highest hash of (key,
// agent id): stable under churn, since only keys owned by an agent that
// left (or won by one that joined) move.
func rendezvous(brokers []Broker, key []byte) Broker {
	var best Broker
	var bestScore uint64
	for i, b := range brokers {
		h := fnv.New64a()
		h.Write(key)
		h.Write([]byte{0})
		h.Write([]byte(b.ID))
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

// ClientZone is the zone a client asked for: "silt_az=<zone>" anywhere in
// its client.id (separated by commas, spaces or semicolons), as WarpStream
// and others do.
func ClientZone(clientID string) string {
	for _, f := range strings.FieldsFunc(clientID, func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
		if z, ok := strings.CutPrefix(f, "silt_az="); ok {
			return z
		}
	}
	return ""
}
