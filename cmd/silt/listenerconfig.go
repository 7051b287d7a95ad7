package main

import (
	"errors"
	"fmt"
	"net"

	"github.com/siltstream/silt/agent"
)

// securityKeys are the keys of the agent's listeners and their TLS, and of
// what the HTTP side exposes.
func securityKeys() []keySpec {
	return []keySpec{
		{"listeners", kindString, "", "Kafka listeners, NAME://host:port,… with NAME one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL or a name in listener.security.protocol.map (replaces listen and advertise)"},
		{"advertised.listeners", kindString, "", "addresses given to each listener's clients, NAME://host:port,… (default: each listener's address, or the hostname when it listens on all interfaces)"},
		{"listener.security.protocol.map", kindString, "", "security protocol of custom listener names, NAME:PROTOCOL,… (e.g. INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL)"},
		{"tls.cert.file", kindString, "", "PEM certificate chain of SSL and SASL_SSL listeners (re-read when it changes on disk)"},
		{"tls.key.file", kindString, "", "PEM private key of tls.cert.file (re-read when it changes on disk)"},
		{"tls.client.ca.file", kindString, "", "PEM CA certificates that sign client certificates (required unless tls.client.auth is none)"},
		{"tls.client.auth", kindString, "none", "client certificates on SSL and SASL_SSL listeners: none, request or required"},
		{"ssl.principal.mapping.rules", kindString, "DEFAULT", "how a client certificate's subject becomes the principal on SSL listeners: RULE:pattern/replacement/[LU],…,DEFAULT as in Kafka"},
		{"http.pprof", kindBool, "false", "serve Go's profiler on http.listen at /debug/pprof/"},
	}
}

// parseListenerSettings reads the listener and TLS keys into s: either
// listeners (and advertised.listeners), or the listen/advertise shorthand
// for one PLAINTEXT listener, never both.
func parseListenerSettings(p *parser, s *settings) {
	a := &s.Agent
	if p.str("listeners") == "" {
		if p.str("advertised.listeners") != "" {
			p.fail(errors.New("advertised.listeners: set without listeners (with listen, use advertise)"))
		}
		if a.Listen == "" {
			a.Listen = agent.DefaultConfig().Listen
		}
	} else {
		if p.str("listen") != "" || p.str("advertise") != "" {
			p.fail(errors.New("listeners: cannot be combined with listen or advertise, the shorthand for one PLAINTEXT listener: list that listener in listeners (and advertised.listeners)"))
		}
		ls, err := agent.ParseListeners(p.str("listeners"), p.str("advertised.listeners"), p.str("listener.security.protocol.map"))
		if err != nil {
			p.fail(err)
		}
		a.Listeners, a.Listen, a.Advertise = ls, "", ""
	}
	a.TLS = agent.TLSConfig{
		CertFile:              p.str("tls.cert.file"),
		KeyFile:               p.str("tls.key.file"),
		ClientCAFile:          p.str("tls.client.ca.file"),
		ClientAuth:            p.str("tls.client.auth"),
		PrincipalMappingRules: p.str("ssl.principal.mapping.rules"),
	}
	s.HTTPPprof = p.bool("http.pprof")
}

// bindListeners binds the Kafka listeners of cfg and records their real
// addresses (port 0, unspecified hosts): what each advertises by default.
func bindListeners(cfg *agent.Config) ([]net.Listener, error) {
	if len(cfg.Listeners) == 0 {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		cfg.Listen = ln.Addr().String()
		if cfg.Advertise == "" {
			cfg.Advertise = defaultAdvertise(ln.Addr().(*net.TCPAddr))
		}
		return []net.Listener{ln}, nil
	}
	var lns []net.Listener
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		ln, err := net.Listen("tcp", l.Listen)
		if err != nil {
			closeListeners(lns)
			return nil, fmt.Errorf("listeners: %s: %w", l.Name, err)
		}
		lns = append(lns, ln)
		l.Listen = ln.Addr().String()
		if l.Advertise == "" {
			l.Advertise = defaultAdvertise(ln.Addr().(*net.TCPAddr))
		}
	}
	cfg.Listen, cfg.Advertise = cfg.Listeners[0].Listen, cfg.Listeners[0].Advertise
	return lns, nil
}

func closeListeners(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// describeListeners is how /status shows the listeners.
func describeListeners(ls []agent.Listener) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = fmt.Sprintf("%s (%s) %s -> %s", l.Name, l.Protocol, l.Listen, l.Advertise)
	}
	return out
}
