package agent

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/siltstream/silt/auth/tlsauth"
	"github.com/siltstream/silt/cluster"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

// Listener is one Kafka listener of the agent, as Kafka configures them:
// a name (listeners, advertised.listeners), a security protocol, the
// address to bind and the address given to its clients.
type Listener struct {
	Name      string
	Protocol  wire.SecurityProtocol
	Listen    string // host:port to bind; an empty host binds every interface
	Advertise string // host:port given to this listener's clients; default Listen
}

// TLSConfig is the TLS of the SSL and SASL_SSL listeners.
type TLSConfig struct {
	CertFile     string // tls.cert.file
	KeyFile      string // tls.key.file
	ClientCAFile string // tls.client.ca.file
	ClientAuth   string // tls.client.auth: none (default), request, required
	// PrincipalMappingRules is ssl.principal.mapping.rules: how the
	// subject of a client certificate becomes the principal on SSL
	// listeners (see tlsauth.PrincipalMapper).
	PrincipalMappingRules string
}

var protocols = []wire.SecurityProtocol{wire.Plaintext, wire.SSL, wire.SASLPlaintext, wire.SASLSSL}

// ParseListeners reads the listeners key (NAME://host:port, …), the
// advertised.listeners key (the same shape, naming some of those
// listeners; a listener it does not name advertises its listen address)
// and listener.security.protocol.map (NAME:PROTOCOL, …) for listener
// names other than the protocols' own, as Kafka does.
func ParseListeners(listeners, advertised, protocolMap string) ([]Listener, error) {
	protoOf := map[string]wire.SecurityProtocol{}
	for _, p := range protocols {
		protoOf[string(p)] = p
	}
	if protocolMap != "" {
		for _, e := range strings.Split(protocolMap, ",") {
			name, proto, ok := strings.Cut(strings.TrimSpace(e), ":")
			name = strings.ToUpper(strings.TrimSpace(name))
			p := wire.SecurityProtocol(strings.ToUpper(strings.TrimSpace(proto)))
			if !ok || name == "" || !slices.Contains(protocols, p) {
				return nil, fmt.Errorf("listener.security.protocol.map: %q is not NAME:PROTOCOL with a protocol of %s", e, protocolNames())
			}
			protoOf[name] = p
		}
	}
	var out []Listener
	for _, e := range splitList(listeners) {
		name, addr, err := splitListener("listeners", e)
		if err != nil {
			return nil, err
		}
		p, ok := protoOf[name]
		if !ok {
			return nil, fmt.Errorf("listeners: %s is not a security protocol (%s) and listener.security.protocol.map does not name it", name, protocolNames())
		}
		if slices.ContainsFunc(out, func(l Listener) bool { return l.Name == name }) {
			return nil, fmt.Errorf("listeners: %s is listed twice", name)
		}
		out = append(out, Listener{Name: name, Protocol: p, Listen: addr})
	}
	if len(out) == 0 && listeners != "" {
		return nil, fmt.Errorf("listeners: %q names no listener", listeners)
	}
	for _, e := range splitList(advertised) {
		name, addr, err := splitListener("advertised.listeners", e)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(out, func(l Listener) bool { return l.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("advertised.listeners: %s is not one of listeners", name)
		}
		if out[i].Advertise != "" {
			return nil, fmt.Errorf("advertised.listeners: %s is listed twice", name)
		}
		out[i].Advertise = addr
	}
	return out, nil
}

func protocolNames() string {
	s := make([]string, len(protocols))
	for i, p := range protocols {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// splitListener splits NAME://host:port; the name is upper-cased, as
// Kafka does.
func splitListener(key, e string) (name, addr string, err error) {
	name, addr, ok := strings.Cut(e, "://")
	if !ok || name == "" {
		return "", "", fmt.Errorf("%s: %q is not NAME://host:port", key, e)
	}
	if err := checkAddr(addr); err != nil {
		return "", "", fmt.Errorf("%s: %s: %v", key, e, err)
	}
	return strings.ToUpper(name), addr, nil
}

func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q has no numeric port", addr)
	}
	return nil
}

// validateListeners checks Listeners and TLS, and makes Listeners the one
// PLAINTEXT listener of Listen and Advertise when it is empty; otherwise
// Listen and Advertise become those of the first listener.
func (c *Config) validateListeners() error {
	if len(c.Listeners) == 0 {
		if err := checkAddr(c.Listen); err != nil {
			return fmt.Errorf("listen: %v", err)
		}
		adv := c.Advertise
		if adv == "" {
			adv = c.Listen
		}
		c.Listeners = []Listener{{Name: string(wire.Plaintext), Protocol: wire.Plaintext, Listen: c.Listen, Advertise: adv}}
	}
	c.Listeners = slices.Clone(c.Listeners) // the caller's copy of the config shares the array
	tlsNeeded := false
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Name == "" {
			return errors.New("listeners: a listener has no name")
		}
		if !slices.Contains(protocols, l.Protocol) {
			return fmt.Errorf("listeners: %s has unknown security protocol %q (want one of %s)", l.Name, l.Protocol, protocolNames())
		}
		if err := checkAddr(l.Listen); err != nil {
			return fmt.Errorf("listeners: %s: %v", l.Name, err)
		}
		if l.Advertise == "" {
			l.Advertise = l.Listen
		}
		if err := checkAddr(l.Advertise); err != nil {
			return fmt.Errorf("advertised.listeners: %s: %v", l.Name, err)
		}
		for _, o := range c.Listeners[:i] {
			if o.Name == l.Name {
				return fmt.Errorf("listeners: %s is listed twice", l.Name)
			}
		}
		tlsNeeded = tlsNeeded || l.Protocol == wire.SSL || l.Protocol == wire.SASLSSL
	}
	c.Listen, c.Advertise = c.Listeners[0].Listen, c.Listeners[0].Advertise
	if _, err := tlsauth.ParseClientAuth(c.TLS.ClientAuth); err != nil {
		return err
	}
	if _, err := tlsauth.ParsePrincipalRules(c.TLS.PrincipalMappingRules); err != nil {
		return fmt.Errorf("ssl.principal.mapping.rules: %v", err)
	}
	if tlsNeeded {
		if err := c.TLS.authConfig().Validate(); err != nil {
			return err
		}
	}
	for _, l := range c.Listeners {
		if l.Protocol.UsesSASL() && len(c.SASL.Mechanisms) == 0 {
			return fmt.Errorf("sasl.mechanisms: required by the %s listener %s", l.Protocol, l.Name)
		}
	}
	return nil
}

func (t TLSConfig) authConfig() tlsauth.Config {
	ca, _ := tlsauth.ParseClientAuth(t.ClientAuth)
	return tlsauth.Config{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile, ClientAuth: ca}
}

// advertisedListeners is what the agent registers in the metastore.
func (c *Config) advertisedListeners() []metastore.AgentListener {
	out := make([]metastore.AgentListener, len(c.Listeners))
	for i, l := range c.Listeners {
		out[i] = metastore.AgentListener{Name: l.Name, Addr: l.Advertise}
	}
	return out
}

// newWireTLS loads the TLS files if a listener needs them: a missing or
// bad file fails New, naming its key.
func (a *Agent) newWireTLS() (*wire.TLS, error) {
	if !slices.ContainsFunc(a.cfg.Listeners, func(l Listener) bool {
		return l.Protocol == wire.SSL || l.Protocol == wire.SASLSSL
	}) {
		return nil, nil
	}
	ac := a.cfg.TLS.authConfig()
	ac.Logger = a.log
	conf, err := tlsauth.ServerConfig(ac)
	if err != nil {
		return nil, err
	}
	mapper, err := tlsauth.ParsePrincipalRules(a.cfg.TLS.PrincipalMappingRules)
	if err != nil {
		return nil, fmt.Errorf("ssl.principal.mapping.rules: %v", err)
	}
	return &wire.TLS{Config: conf, Principal: mapper.Principal}, nil
}

// Listeners returns the agent's listeners, with the addresses it serves and
// advertises.
func (a *Agent) Listeners() []Listener { return slices.Clone(a.cfg.Listeners) }

// serveListener serves one bound listener.
func (a *Agent) serveListener(ln net.Listener, l Listener) error {
	wl := wire.Listener{Name: l.Name, Protocol: l.Protocol}
	if l.Protocol == wire.SSL || l.Protocol == wire.SASLSSL {
		return a.server.ServeTLS(ln, wl, a.tls)
	}
	return a.server.ServeListener(ln, wl)
}

// serveAll serves lns[i] as Listeners[i] until Shutdown or Close and
// returns nil then, or the first error of a listener that fails for good
// (the others keep serving until Close).
func (a *Agent) serveAll(lns []net.Listener) error {
	if len(lns) != len(a.cfg.Listeners) {
		for _, ln := range lns {
			ln.Close()
		}
		return fmt.Errorf("serve: %d listeners bound for %d configured", len(lns), len(a.cfg.Listeners))
	}
	errc := make(chan error, len(lns))
	for i, ln := range lns {
		go func() { errc <- a.serveListener(ln, a.cfg.Listeners[i]) }()
	}
	for range lns {
		if err := <-errc; err != nil {
			return err
		}
	}
	return nil
}

// viewFor is the cluster as the client of c sees it: the agents that
// advertise the listener c came in on, at that listener's addresses. It
// always holds this agent.
func (a *Agent) viewFor(c *wire.Conn) *cluster.View {
	name := a.advertisedName(c)
	v := a.members.View().ForListener(name)
	if len(v.Brokers) == 0 {
		if self, ok := a.members.Self().Endpoint(name); ok {
			v.Brokers = []cluster.Broker{self}
		}
	}
	return v
}

// advertisedName is the listener whose addresses c's client is given: the
// one it came in on, or, for a listener served with ServeListener that is
// not among the configured ones (tests, embedders), the first configured
// listener, whose addresses are the agent's advertise.
func (a *Agent) advertisedName(c *wire.Conn) string {
	name := c.Listener().Name
	for _, l := range a.cfg.Listeners {
		if l.Name == name {
			return name
		}
	}
	return a.cfg.Listeners[0].Name
}

// coordinatorOn is the coordinator of key as the client of c reaches it,
// or COORDINATOR_NOT_AVAILABLE if it does not serve c's listener.
func (a *Agent) coordinatorOn(c *wire.Conn, key string) (cluster.Broker, int16, string) {
	name := a.advertisedName(c)
	b, ok := a.coordinatorFor(key).Endpoint(name)
	if !ok {
		return b, kerr.CoordinatorNotAvailable.Code, "the coordinator does not serve listener " + name
	}
	return b, 0, ""
}
