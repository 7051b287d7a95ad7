package acl

import (
	"net/netip"
	"sort"
	"strings"

	"github.com/siltstream/silt/metastore"
)

// Matcher is an immutable, in-memory index of bindings by resource type
// and name. Its lookups allocate nothing: a literal name is one map
// lookup, prefixes are one map lookup per distinct prefix length.
type Matcher struct {
	types     [metastore.ResourceTransactionalID + 1]index
	count     int
	needsHost bool // some binding names a host other than "*"
}

// index holds one resource type's bindings.
type index struct {
	literal  map[string][]rule // by name; "*" holds the wildcard bindings
	prefixed map[string][]rule // by prefix
	lengths  []int             // distinct prefix lengths, ascending
	any      bool              // the type has at least one binding
	patterns []Binding
}

// rule is a binding without its resource.
type rule struct {
	principal string
	host      hostMatch
	op        metastore.ACLOperation
	deny      bool
}

// hostMatch is a binding's host, parsed once: "*" matches every client,
// an IP the clients with that address (IPv4-mapped IPv6 addresses equal
// their IPv4 form), anything else (a hostname) none, as in Kafka, which
// compares with the client's IP.
type hostMatch struct {
	any  bool
	addr netip.Addr // invalid: matches nothing
}

func parseHost(h string) hostMatch {
	if h == metastore.ACLWildcard {
		return hostMatch{any: true}
	}
	addr, err := netip.ParseAddr(h)
	if err != nil {
		return hostMatch{}
	}
	return hostMatch{addr: addr.Unmap()}
}

func (h hostMatch) matches(client netip.Addr) bool {
	return h.any || (h.addr.IsValid() && h.addr == client.Unmap())
}

// NewMatcher indexes bs. Bindings with an unknown resource type or pattern
// type are ignored.
func NewMatcher(bs []Binding) *Matcher {
	m := &Matcher{}
	for _, b := range bs {
		if b.ResourceType < metastore.ResourceTopic || b.ResourceType > metastore.ResourceTransactionalID {
			continue
		}
		ix := &m.types[b.ResourceType]
		r := rule{principal: b.Principal, host: parseHost(b.Host), op: b.Operation, deny: b.Permission == metastore.PermissionDeny}
		switch b.PatternType {
		case metastore.PatternLiteral:
			if ix.literal == nil {
				ix.literal = make(map[string][]rule)
			}
			ix.literal[b.ResourceName] = append(ix.literal[b.ResourceName], r)
		case metastore.PatternPrefixed:
			if ix.prefixed == nil {
				ix.prefixed = make(map[string][]rule)
			}
			if _, seen := ix.prefixed[b.ResourceName]; !seen {
				ix.lengths = append(ix.lengths, len(b.ResourceName))
			}
			ix.prefixed[b.ResourceName] = append(ix.prefixed[b.ResourceName], r)
		default:
			continue
		}
		ix.any = true
		ix.patterns = append(ix.patterns, b)
		m.count++
		if b.Host != metastore.ACLWildcard {
			m.needsHost = true
		}
	}
	for i := range m.types {
		ls := m.types[i].lengths
		sort.Ints(ls)
		m.types[i].lengths = compactInts(ls)
	}
	return m
}

func compactInts(s []int) []int {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Len is the number of bindings indexed.
func (m *Matcher) Len() int { return m.count }

// NeedsHost reports whether any binding names a specific host; if not,
// the host passed to Authorize is never looked at.
func (m *Matcher) NeedsHost() bool { return m.needsHost }

// Result is what the bindings say about one request.
type Result uint8

const (
	NoACL   Result = iota // no binding exists for the resource, for anyone
	Denied                // a DENY applies, or bindings exist and no ALLOW applies
	Allowed               // an ALLOW applies and no DENY does
)

// Authorize decides whether principal, connecting from host, may do op on
// the resource (rt, name). Super users and allow.everyone.if.no.acl.found
// are the Authorizer's business: a resource without bindings is NoACL.
func (m *Matcher) Authorize(principal string, host netip.Addr, op metastore.ACLOperation, rt metastore.ACLResourceType, name string) Result {
	if rt < 0 || int(rt) >= len(m.types) {
		return Denied
	}
	ix := &m.types[rt]
	if !ix.any {
		return NoACL
	}
	var found, allowed bool
	check := func(rs []rule) bool { // reports a DENY
		if len(rs) == 0 {
			return false
		}
		found = true
		for i := range rs {
			switch rs[i].applies(principal, host, op) {
			case Denied:
				return true
			case Allowed:
				allowed = true
			}
		}
		return false
	}
	if check(ix.literal[name]) || check(ix.literal[metastore.ACLWildcard]) {
		return Denied
	}
	for _, l := range ix.lengths {
		if l > len(name) {
			break
		}
		if check(ix.prefixed[name[:l]]) {
			return Denied
		}
	}
	switch {
	case allowed:
		return Allowed
	case found:
		return Denied
	}
	return NoACL
}

// applies is Kafka's findResult: NoACL if the rule does not apply to the
// request, else its verdict. ALLOW rules for READ, WRITE, DELETE and ALTER
// also allow DESCRIBE; ALTER_CONFIGS allows DESCRIBE_CONFIGS. DENY rules
// imply nothing.
func (r *rule) applies(principal string, host netip.Addr, op metastore.ACLOperation) Result {
	if r.principal != principal && r.principal != WildcardPrincipal {
		return NoACL
	}
	if !r.host.matches(host) {
		return NoACL
	}
	if r.op != metastore.OpAll && r.op != op {
		if r.deny {
			return NoACL
		}
		switch op {
		case metastore.OpDescribe:
			if r.op != metastore.OpRead && r.op != metastore.OpWrite && r.op != metastore.OpDelete && r.op != metastore.OpAlter {
				return NoACL
			}
		case metastore.OpDescribeConfigs:
			if r.op != metastore.OpAlterConfigs {
				return NoACL
			}
		default:
			return NoACL
		}
	}
	if r.deny {
		return Denied
	}
	return Allowed
}

// AuthorizeAny is Kafka's authorizeByResourceType: whether principal may
// do op on at least one resource of type rt, i.e. some ALLOW binding (for
// op or ALL) applies to it that no DENY binding of the same principal,
// host and operation covers (a DENY on the literal wildcard or on a
// prefix of the allowed pattern). NoACL if the type has no bindings.
func (m *Matcher) AuthorizeAny(principal string, host netip.Addr, op metastore.ACLOperation, rt metastore.ACLResourceType) Result {
	if rt < 0 || int(rt) >= len(m.types) {
		return Denied
	}
	ix := &m.types[rt]
	if !ix.any {
		return NoACL
	}
	matches := func(b Binding) bool {
		return (b.Principal == principal || b.Principal == WildcardPrincipal) &&
			parseHost(b.Host).matches(host) &&
			(b.Operation == op || b.Operation == metastore.OpAll)
	}
	denied := func(allow Binding) bool {
		for _, d := range ix.patterns {
			if d.Permission != metastore.PermissionDeny || !matches(d) {
				continue
			}
			switch {
			case d.PatternType == metastore.PatternLiteral && d.ResourceName == metastore.ACLWildcard:
				return true
			case d.PatternType == metastore.PatternPrefixed && strings.HasPrefix(allow.ResourceName, d.ResourceName):
				return true
			case d.PatternType == metastore.PatternLiteral && allow.PatternType == metastore.PatternLiteral && d.ResourceName == allow.ResourceName:
				return true
			}
		}
		return false
	}
	for _, b := range ix.patterns {
		if b.Permission == metastore.PermissionAllow && matches(b) && !denied(b) {
			return Allowed
		}
	}
	return Denied
}
