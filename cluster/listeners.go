package cluster

import (
	"fmt"
	"net"
	"strconv"

	"github.com/siltstream/silt/metastore"
)

// Endpoint is where the clients of one listener reach a broker.
type Endpoint struct {
	Listener string // the listener's name
	Host     string
	Port     int32
}

// plaintext is the name of the one listener of an agent that advertises
// no listeners (registered by a version that did not record them).
const plaintext = "PLAINTEXT"

// agent is this agent's registration.
func (c Config) agent() metastore.Agent {
	node := NodeID(c.AgentID)
	if c.NodeID != nil {
		node = *c.NodeID
	}
	return metastore.Agent{ID: c.AgentID, Addr: c.Advertise, Zone: c.Zone, Listeners: c.Listeners, NodeID: &node}
}

func checkListeners(ls []metastore.AgentListener) error {
	for _, l := range ls {
		if _, ok := parseHostPort(l.Addr); !ok {
			return fmt.Errorf("advertised.listeners: %s address %q is not host:port with a numeric port", l.Name, l.Addr)
		}
	}
	return nil
}

// listenersOf is an agent's advertised listeners, encoded.
func listenersOf(ag metastore.Agent) string {
	if len(ag.Listeners) == 0 {
		return metastore.FormatAgentListeners([]metastore.AgentListener{{Name: plaintext, Addr: ag.Addr}})
	}
	return metastore.FormatAgentListeners(ag.Listeners)
}

// Endpoints returns the broker's advertised listeners, skipping malformed
// ones.
func (b Broker) Endpoints() []Endpoint {
	if b.listeners == "" { // a Broker not read from the store
		return []Endpoint{{Listener: plaintext, Host: b.Host, Port: b.Port}}
	}
	var out []Endpoint
	for _, l := range metastore.ParseAgentListeners(b.listeners) {
		if ep, ok := parseHostPort(l.Addr); ok {
			ep.Listener = l.Name
			out = append(out, ep)
		}
	}
	return out
}

func parseHostPort(addr string) (Endpoint, bool) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return Endpoint{}, false
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return Endpoint{}, false
	}
	return Endpoint{Host: host, Port: int32(port)}, true
}

// Endpoint returns b as the clients of listener see it: with that
// listener's host and port. ok is false if b does not advertise listener;
// Kafka then leaves the broker out of what it tells those clients.
func (b Broker) Endpoint(listener string) (Broker, bool) {
	for _, ep := range b.Endpoints() {
		if ep.Listener == listener {
			b.Host, b.Port = ep.Host, ep.Port
			return b, true
		}
	}
	return Broker{}, false
}

// ForListener returns the view the clients of listener get: the brokers
// that advertise it, at its addresses, with the same epoch. Leaders placed
// on it (LeaderFor) are brokers those clients can reach; any agent serves
// any partition, so this only moves routing. Coordinators are not: they
// are placed on the whole view (CoordinatorFor) so every agent agrees, and
// looked up with Broker.Endpoint.
func (v *View) ForListener(listener string) *View {
	out := &View{Epoch: v.Epoch, Brokers: make([]Broker, 0, len(v.Brokers))}
	for _, b := range v.Brokers {
		if eb, ok := b.Endpoint(listener); ok {
			out.Brokers = append(out.Brokers, eb)
		}
	}
	return out
}
