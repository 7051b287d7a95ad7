package wire

import (
	"fmt"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiVersionsKey is the key of ApiVersions, which the Server answers itself.
const apiVersionsKey int16 = 18

// ApiVersions versions the Server answers. v5 (KIP-1073 cluster and node
// IDs in the request) is not needed by clients; they fall back per KIP-511.
const (
	apiVersionsMin int16 = 0
	apiVersionsMax int16 = 4
)

// Registry maps Kafka API keys to Handlers and the version range each one
// supports. It drives both dispatch and the ApiVersions response. Build it at
// startup; NewServer freezes it, and Register panics afterwards.
type Registry struct {
	mu       sync.Mutex
	frozen   bool
	entries  map[int16]registryEntry
	features []Feature
}

// Feature is one feature flag ApiVersions v3+ reports (KIP-584): the
// levels the server supports and the level in force (finalized). Level 0
// means off, and is not listed as finalized, as Kafka does.
type Feature struct {
	Name     string
	Min, Max int16
	Level    int16
}

type registryEntry struct {
	min, max int16
	handler  Handler // nil for ApiVersions, which the Server answers
	hidden   bool    // answered but not advertised (RegisterHidden)
}

// NewRegistry returns a Registry holding only ApiVersions (key 18, versions
// 0–4), which the Server answers from the Registry itself.
func NewRegistry() *Registry {
	return &Registry{entries: map[int16]registryEntry{
		apiVersionsKey: {min: apiVersionsMin, max: apiVersionsMax},
	}}
}

// Register adds a handler for key in [minVersion, maxVersion]. It panics on a
// duplicate key (ApiVersions is always registered), a nil handler, a key or
// version range kmsg does not know, or a call after NewServer: these are
// programmer errors at startup, not client input.
func (r *Registry) Register(key int16, minVersion, maxVersion int16, h Handler) {
	r.register(key, minVersion, maxVersion, h, false)
}

// RegisterHidden is Register for an API that is answered but not
// advertised in ApiVersions: a feature turned off by configuration whose
// requests get an error code (UNSUPPORTED_VERSION, say) rather than a
// closed connection.
func (r *Registry) RegisterHidden(key int16, minVersion, maxVersion int16, h Handler) {
	r.register(key, minVersion, maxVersion, h, true)
}

func (r *Registry) register(key int16, minVersion, maxVersion int16, h Handler, hidden bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := kmsg.NameForKey(key)
	switch {
	case r.frozen:
		panic(fmt.Sprintf("wire: Register(%d %s) after NewServer", key, name))
	case h == nil:
		panic(fmt.Sprintf("wire: Register(%d %s) with a nil handler", key, name))
	}
	if _, dup := r.entries[key]; dup {
		panic(fmt.Sprintf("wire: Register(%d %s): key already registered", key, name))
	}
	req := kmsg.RequestForKey(key)
	if req == nil {
		panic(fmt.Sprintf("wire: Register(%d): kmsg does not know this API key", key))
	}
	if minVersion < 0 || minVersion > maxVersion || maxVersion > req.MaxVersion() {
		panic(fmt.Sprintf("wire: Register(%d %s): version range [%d, %d] is not within kmsg's [0, %d]",
			key, name, minVersion, maxVersion, req.MaxVersion()))
	}
	r.entries[key] = registryEntry{min: minVersion, max: maxVersion, handler: h, hidden: hidden}
}

// SetFeatures sets the features ApiVersions reports. It panics after
// NewServer or on a level outside its feature's range: programmer errors.
func (r *Registry) SetFeatures(fs []Feature) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.frozen {
		panic("wire: SetFeatures after NewServer")
	}
	for _, f := range fs {
		if f.Min < 0 || f.Min > f.Max || f.Level != 0 && (f.Level < f.Min || f.Level > f.Max) {
			panic(fmt.Sprintf("wire: feature %s: level %d, range [%d, %d]", f.Name, f.Level, f.Min, f.Max))
		}
	}
	r.features = append([]Feature(nil), fs...)
}

// Features returns the features set by SetFeatures.
func (r *Registry) Features() []Feature {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Feature(nil), r.features...)
}

// Versions returns every registered key with its version range, ApiVersions
// included, sorted by key. It is exactly what ApiVersions advertises.
func (r *Registry) Versions() []kmsg.ApiVersionsResponseApiKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(r.entries))
	for key, e := range r.entries {
		if e.hidden {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = key, e.min, e.max
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ApiKey < out[j].ApiKey })
	return out
}

// freeze stops further registration so that the Server can read entries
// without locking; the mutex hand-off publishes earlier writes.
func (r *Registry) freeze() {
	r.mu.Lock()
	r.frozen = true
	r.mu.Unlock()
}

// lookup is only called on a frozen Registry.
func (r *Registry) lookup(key int16) (registryEntry, bool) {
	e, ok := r.entries[key]
	return e, ok
}
