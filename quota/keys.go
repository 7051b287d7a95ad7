package quota

import (
	"fmt"
	"math"
	"net/netip"
	"strings"

	"github.com/siltstream/silt/metastore"
)

// Entity types, as on the wire.
const (
	TypeUser     = "user"
	TypeClientID = "client-id"
	TypeIP       = "ip"
)

// Quota keys, as on the wire and in the store.
const (
	ProducerByteRate       = "producer_byte_rate"
	ConsumerByteRate       = "consumer_byte_rate"
	RequestPercentage      = "request_percentage"
	ControllerMutationRate = "controller_mutation_rate"
	ConnectionCreationRate = "connection_creation_rate"
)

// valueKind is how Kafka's config definition types a key's value.
type valueKind int

const (
	kindLong valueKind = iota
	kindInt
	kindDouble
)

// userClientKeys are the keys of user and client-id entities, ipKeys those
// of ip entities (Kafka's QuotaConfig).
var (
	userClientKeys = map[string]valueKind{
		ProducerByteRate:       kindLong,
		ConsumerByteRate:       kindLong,
		RequestPercentage:      kindDouble,
		ControllerMutationRate: kindDouble,
	}
	ipKeys = map[string]valueKind{
		ConnectionCreationRate: kindInt,
	}
)

// Component is one (type, name) pair of an entity as a request carries
// it; a nil Name is the default entity.
type Component struct {
	Type string
	Name *string
}

// ParseEntity checks an entity's components as Kafka's controller does
// and returns it: not empty, no type twice, known types, no empty name,
// ip alone and naming an IP address.
func ParseEntity(cs []Component) (metastore.QuotaEntity, error) {
	var e metastore.QuotaEntity
	if len(cs) == 0 {
		return e, fmt.Errorf("invalid empty client quota entity")
	}
	for _, c := range cs {
		var slot *metastore.QuotaName
		switch c.Type {
		case TypeUser:
			slot = &e.User
		case TypeClientID:
			slot = &e.ClientID
		case TypeIP:
			slot = &e.IP
		default:
			return e, fmt.Errorf("unhandled client quota entity type: %s", c.Type)
		}
		if slot.Kind != metastore.QuotaAbsent {
			return e, fmt.Errorf("invalid client quota entity, duplicate entity entry %s", c.Type)
		}
		switch {
		case c.Name == nil:
			*slot = metastore.DefaultName()
		case *c.Name == "":
			return e, fmt.Errorf("empty %s not supported", c.Type)
		default:
			*slot = metastore.Named(*c.Name)
		}
	}
	if e.IP.Kind != metastore.QuotaAbsent {
		if e.User.Kind != metastore.QuotaAbsent || e.ClientID.Kind != metastore.QuotaAbsent {
			return e, fmt.Errorf("invalid quota entity combination, IP entity should not be combined with User or ClientId")
		}
		// Kafka also takes a host name it can resolve; an agent does not
		// resolve names a client sends.
		if e.IP.Kind == metastore.QuotaNamed {
			if _, err := netip.ParseAddr(e.IP.Name); err != nil {
				return e, fmt.Errorf("%s is not a valid IP address", e.IP.Name)
			}
		}
	}
	return e, nil
}

// Components lists e's components in a fixed order: user, client-id, ip.
func Components(e metastore.QuotaEntity) []Component {
	var out []Component
	add := func(typ string, n metastore.QuotaName) {
		switch n.Kind {
		case metastore.QuotaDefault:
			out = append(out, Component{Type: typ})
		case metastore.QuotaNamed:
			name := n.Name
			out = append(out, Component{Type: typ, Name: &name})
		}
	}
	add(TypeUser, e.User)
	add(TypeClientID, e.ClientID)
	add(TypeIP, e.IP)
	return out
}

// EntityString renders e as Kafka's tools do: "user=alice,
// client-id=<default>".
func EntityString(e metastore.QuotaEntity) string {
	var b strings.Builder
	for i, c := range Components(e) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.Type + "=")
		if c.Name == nil {
			b.WriteString("<default>")
		} else {
			b.WriteString(*c.Name)
		}
	}
	return b.String()
}

// ValidateValue checks that key may be set to v on e, as Kafka's
// controller does: a key of e's kind of entity, greater than 0, and for
// integral keys whole and in range. NaN and infinities are refused.
func ValidateValue(e metastore.QuotaEntity, key string, v float64) error {
	keys := userClientKeys
	if e.IP.Kind != metastore.QuotaAbsent {
		keys = ipKeys
	}
	kind, ok := keys[key]
	if !ok {
		return fmt.Errorf("invalid configuration key %s", key)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("quota %s must be a finite number", key)
	}
	if v <= 0 {
		return fmt.Errorf("quota %s must be greater than 0", key)
	}
	switch kind {
	case kindInt:
		if v > math.MaxInt32 {
			return fmt.Errorf("proposed value for %s is too large for an INT", key)
		}
	case kindLong:
		if v > math.MaxInt64 {
			return fmt.Errorf("proposed value for %s is too large for a LONG", key)
		}
	default:
		return nil
	}
	if math.Abs(math.Mod(v, 1)) > 1e-6 {
		return fmt.Errorf("%s cannot be a fractional value", key)
	}
	return nil
}

// Match types of a DescribeClientQuotas filter component.
const (
	MatchExact   int8 = 0 // the named entity, or the default if the name is null (v0 semantics)
	MatchDefault int8 = 1 // the default entity
	MatchAny     int8 = 2 // any entity of the type, named or default
)

// FilterComponent is one component of a DescribeClientQuotas filter.
type FilterComponent struct {
	Type      string
	MatchType int8
	Match     *string
}

// Filter is a parsed DescribeClientQuotas filter.
type Filter struct {
	exact  map[string]metastore.QuotaName
	typed  map[string]bool
	strict bool
}

// ErrUnsupportedType is returned by ParseFilter for an entity type Kafka
// does not know: Kafka answers it UNSUPPORTED_VERSION.
type ErrUnsupportedType struct{ Type string }

func (e *ErrUnsupportedType) Error() string { return "unsupported entity type " + e.Type }

// ParseFilter checks a filter as Kafka does (ClientQuotasImage.describe):
// non-empty types, each at most once, known, match strings present only
// for exact matches, ip not combined with user or client-id. Every other
// problem is an invalid request.
func ParseFilter(cs []FilterComponent, strict bool) (Filter, error) {
	f := Filter{exact: make(map[string]metastore.QuotaName), typed: make(map[string]bool), strict: strict}
	for _, c := range cs {
		if c.Type == "" {
			return f, fmt.Errorf("invalid empty entity type")
		}
		if _, ok := f.exact[c.Type]; ok || f.typed[c.Type] {
			return f, fmt.Errorf("entity type %s cannot appear more than once in the filter", c.Type)
		}
		if c.Type != TypeUser && c.Type != TypeClientID && c.Type != TypeIP {
			return f, &ErrUnsupportedType{Type: c.Type}
		}
		switch c.MatchType {
		case MatchExact:
			if c.Match == nil {
				return f, fmt.Errorf("request specified MATCH_TYPE_EXACT, but set match string to null")
			}
			f.exact[c.Type] = metastore.Named(*c.Match)
		case MatchDefault:
			if c.Match != nil {
				return f, fmt.Errorf("request specified MATCH_TYPE_DEFAULT, but also specified a match string")
			}
			f.exact[c.Type] = metastore.DefaultName()
		case MatchAny:
			if c.Match != nil {
				return f, fmt.Errorf("request specified MATCH_TYPE_SPECIFIED, but also specified a match string")
			}
			f.typed[c.Type] = true
		default:
			return f, fmt.Errorf("unknown match type %d", c.MatchType)
		}
	}
	has := func(t string) bool { _, ok := f.exact[t]; return ok || f.typed[t] }
	if has(TypeIP) && (has(TypeUser) || has(TypeClientID)) {
		return f, fmt.Errorf("invalid entity filter component combination: IP filter component should not be used with user or clientId filter component")
	}
	return f, nil
}

// Matches reports whether the filter selects e: every exact component
// equal, every typed component present, and with strict no other type.
func (f Filter) Matches(e metastore.QuotaEntity) bool {
	names := map[string]metastore.QuotaName{TypeUser: e.User, TypeClientID: e.ClientID, TypeIP: e.IP}
	if f.strict {
		n := 0
		for _, v := range names {
			if v.Kind != metastore.QuotaAbsent {
				n++
			}
		}
		if n != len(f.exact)+len(f.typed) {
			return false
		}
	}
	for t, want := range f.exact {
		if names[t] != want {
			return false
		}
	}
	for t := range f.typed {
		if names[t].Kind == metastore.QuotaAbsent {
			return false
		}
	}
	return true
}
