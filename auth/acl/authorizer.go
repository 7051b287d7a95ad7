package acl

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siltstream/silt/metastore"
)

// Store is what the Authorizer reads: every stored binding.
type Store interface {
	ACLs(ctx context.Context, f metastore.ACLFilter) ([]metastore.ACL, error)
}

// Config is the authorizer's configuration.
type Config struct {
	// SuperUsers pass every check (super.users).
	SuperUsers []string
	// AllowIfNoACL allows a request on a resource no binding names, for
	// anyone (allow.everyone.if.no.acl.found).
	AllowIfNoACL bool
	// RefreshInterval is how often Run re-reads the bindings even without
	// a notification, so a lost one heals. Default 10s.
	RefreshInterval time.Duration
}

// ParseSuperUsers splits super.users as Kafka does: principals separated
// by ';' ("User:admin;User:ops").
func ParseSuperUsers(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if typ, name, ok := strings.Cut(p, ":"); !ok || typ == "" || name == "" {
			return nil, fmt.Errorf("super.users: %q is not Type:Name", p)
		}
		out = append(out, p)
	}
	return out, nil
}

// Authorizer answers authorization checks from the current Matcher,
// which Reload replaces atomically. Until the first Reload succeeds it
// allows only super users: it fails closed. Safe for concurrent use.
type Authorizer struct {
	superUsers   map[string]struct{}
	allowIfNoACL bool
	every        time.Duration
	store        Store
	m            atomic.Pointer[Matcher]
	changed      chan struct{}

	// Reloads may overlap (Run's, and the one an ACL change makes at
	// once): each is numbered when it starts reading, and a matcher is
	// installed only if no later-started reload installed one first, so
	// a slow reload of older bindings never replaces newer ones.
	reloads   atomic.Uint64
	installMu sync.Mutex // guards installed
	installed uint64
}

// New returns an Authorizer over store; call Reload (or Run) to load.
func New(cfg Config, store Store) *Authorizer {
	a := &Authorizer{
		superUsers:   make(map[string]struct{}, len(cfg.SuperUsers)),
		allowIfNoACL: cfg.AllowIfNoACL,
		every:        cfg.RefreshInterval,
		store:        store,
		changed:      make(chan struct{}, 1),
	}
	if a.every <= 0 {
		a.every = 10 * time.Second
	}
	for _, u := range cfg.SuperUsers {
		a.superUsers[u] = struct{}{}
	}
	return a
}

// Loaded reports whether a Reload has succeeded.
func (a *Authorizer) Loaded() bool { return a.m.Load() != nil }

// NeedsHost reports whether checks look at the client's host at all, so
// callers can skip working it out.
func (a *Authorizer) NeedsHost() bool {
	m := a.m.Load()
	return m != nil && m.NeedsHost()
}

// IsSuperUser reports whether principal is in super.users.
func (a *Authorizer) IsSuperUser(principal string) bool {
	_, ok := a.superUsers[principal]
	return ok
}

// Authorize reports whether principal, connecting from host, may do op on
// resource (rt, name).
func (a *Authorizer) Authorize(principal string, host netip.Addr, op metastore.ACLOperation, rt metastore.ACLResourceType, name string) bool {
	if a.IsSuperUser(principal) {
		return true
	}
	m := a.m.Load()
	return m != nil && a.decide(m.Authorize(principal, host, op, rt, name))
}

// AuthorizeAny reports whether principal may do op on at least one
// resource of type rt (Kafka's authorizeByResourceType).
func (a *Authorizer) AuthorizeAny(principal string, host netip.Addr, op metastore.ACLOperation, rt metastore.ACLResourceType) bool {
	if a.IsSuperUser(principal) {
		return true
	}
	m := a.m.Load()
	return m != nil && a.decide(m.AuthorizeAny(principal, host, op, rt))
}

func (a *Authorizer) decide(r Result) bool {
	return r == Allowed || (r == NoACL && a.allowIfNoACL)
}

// Reload reads every binding and swaps the matcher, unless a reload that
// started later already did.
func (a *Authorizer) Reload(ctx context.Context) error {
	n := a.reloads.Add(1)
	bs, err := a.store.ACLs(ctx, metastore.ACLFilter{
		ResourceType: metastore.ResourceAny, PatternType: metastore.PatternAny,
		Operation: metastore.OpAny, Permission: metastore.PermissionAny,
	})
	if err != nil {
		return fmt.Errorf("reload acls: %w", err)
	}
	m := NewMatcher(bs)
	a.installMu.Lock()
	defer a.installMu.Unlock()
	if n > a.installed {
		a.m.Store(m)
		a.installed = n
	}
	return nil
}

// Changed tells Run the stored bindings changed; it never blocks, and
// changes reported while a reload is pending share it.
func (a *Authorizer) Changed() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// Run reloads on every Changed and every RefreshInterval until ctx ends,
// reporting failures to onErr (a failed reload keeps the last matcher and
// is retried at the next tick).
func (a *Authorizer) Run(ctx context.Context, onErr func(error)) {
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.changed:
		case <-t.C:
		}
		if err := a.Reload(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
	}
}
