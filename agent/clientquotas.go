package agent

// DescribeClientQuotas (48) and AlterClientQuotas (49), versions 0–1, as
// Kafka's KRaft brokers and controller answer them.
//
// DescribeClientQuotas needs DESCRIBE_CONFIGS on the cluster and
// AlterClientQuotas ALTER_CONFIGS on it (else CLUSTER_AUTHORIZATION_FAILED,
// for the whole request or for every entry). Entities are a user, a client
// id, both, or an IP (alone), each named or the default (a null name). A
// filter or an entry Kafka refuses is refused with its code: an invalid
// filter answers INVALID_REQUEST (UNSUPPORTED_VERSION for an unknown entity
// type); an invalid entry answers INVALID_REQUEST on its own, and the
// other entries are applied, all in one metastore transaction (an entity
// named twice is refused both times, where Kafka applies the first). An IP
// entity must name an IP address: Kafka also resolves host names, an
// agent does not resolve names clients send. ValidateOnly checks without
// storing.
//
// The quotas live in the metastore; this agent reloads at once after a
// change, the others when the store notifies them and every few seconds
// regardless. How they are enforced is in quotas.go.

import (
	"context"
	"errors"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/quota"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleDescribeClientQuotas(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DescribeClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	fail := func(e *kerr.Error, msg string) wire.Reply {
		resp.ErrorCode, resp.ErrorMessage = e.Code, &msg
		return wire.Respond(resp)
	}
	if !a.access(c).cluster(metastore.OpDescribeConfigs) {
		return fail(kerr.ClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed.Message)
	}
	comps := make([]quota.FilterComponent, len(req.Components))
	for i, rc := range req.Components {
		comps[i] = quota.FilterComponent{Type: rc.EntityType, MatchType: int8(rc.MatchType), Match: rc.Match}
	}
	f, err := quota.ParseFilter(comps, req.Strict)
	if err != nil {
		var unsupported *quota.ErrUnsupportedType
		if errors.As(err, &unsupported) {
			return fail(kerr.UnsupportedVersion, err.Error())
		}
		return fail(kerr.InvalidRequest, err.Error())
	}
	// From the store, not this agent's copy: what was just altered
	// through another agent is described at once.
	qs, err := a.store.ClientQuotas(ctx)
	if err != nil {
		a.log.Warn("describe client quotas", "err", err)
		return fail(kerr.UnknownServerError, err.Error())
	}
	for _, q := range qs {
		if !f.Matches(q.Entity) {
			continue
		}
		e := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, comp := range quota.Components(q.Entity) {
			ee := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			ee.Type, ee.Name = comp.Type, comp.Name
			e.Entity = append(e.Entity, ee)
		}
		keys := make([]string, 0, len(q.Values))
		for k := range q.Values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := kmsg.NewDescribeClientQuotasResponseEntryValue()
			v.Key, v.Value = k, q.Values[k]
			e.Values = append(e.Values, v)
		}
		resp.Entries = append(resp.Entries, e)
	}
	return wire.Respond(resp)
}

func (a *Agent) handleAlterClientQuotas(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.AlterClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	resp.Entries = make([]kmsg.AlterClientQuotasResponseEntry, len(req.Entries))
	allowed := a.access(c).cluster(metastore.OpAlterConfigs)
	setErr := func(i int, e *kerr.Error, msg string) {
		resp.Entries[i].ErrorCode, resp.Entries[i].ErrorMessage = e.Code, &msg
	}

	alts := make([]metastore.QuotaAlteration, len(req.Entries))
	ok := make([]bool, len(req.Entries))
	first := make(map[metastore.QuotaEntity]int) // entity -> the entry that named it first
	for i, re := range req.Entries {
		r := &resp.Entries[i]
		*r = kmsg.NewAlterClientQuotasResponseEntry()
		comps := make([]quota.Component, len(re.Entity))
		for j, ent := range re.Entity {
			ee := kmsg.NewAlterClientQuotasResponseEntryEntity()
			ee.Type, ee.Name = ent.Type, ent.Name
			r.Entity = append(r.Entity, ee)
			comps[j] = quota.Component{Type: ent.Type, Name: ent.Name}
		}
		if !allowed {
			setErr(i, kerr.ClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed.Message)
			continue
		}
		e, err := quota.ParseEntity(comps)
		if err != nil {
			setErr(i, kerr.InvalidRequest, err.Error())
			continue
		}
		if j, dup := first[e]; dup {
			setErr(i, kerr.InvalidRequest, "ignoring duplicate entity")
			if ok[j] {
				ok[j] = false
				setErr(j, kerr.InvalidRequest, "ignoring duplicate entity")
			}
			continue
		}
		first[e] = i
		alt, err := alteration(e, re.Ops)
		if err != nil {
			setErr(i, kerr.InvalidRequest, err.Error())
			continue
		}
		alts[i], ok[i] = alt, true
	}
	var apply []metastore.QuotaAlteration
	var slots []int
	for i := range alts {
		if ok[i] {
			apply = append(apply, alts[i])
			slots = append(slots, i)
		}
	}
	if len(apply) == 0 || req.ValidateOnly {
		return wire.Respond(resp)
	}
	if err := a.store.AlterClientQuotas(ctx, apply); err != nil {
		a.log.Warn("alter client quotas", "err", err)
		for _, i := range slots {
			setErr(i, kerr.UnknownServerError, err.Error())
		}
		return wire.Respond(resp)
	}
	for _, alt := range apply {
		a.log.Info("altered client quotas", "entity", quota.EntityString(alt.Entity), "set", alt.Set, "removed", alt.Remove, "by", c.Principal())
	}
	if err := a.quotas.Reload(ctx); err != nil {
		a.log.Warn("reload client quotas after a change", "err", err)
		a.quotas.Changed() // Run retries
	}
	return wire.Respond(resp)
}

// alteration checks one entry's operations as Kafka's controller does: no
// key twice, and every value set valid for the entity; removals are not
// checked (removing what is not there changes nothing).
func alteration(e metastore.QuotaEntity, ops []kmsg.AlterClientQuotasRequestEntryOp) (metastore.QuotaAlteration, error) {
	alt := metastore.QuotaAlteration{Entity: e, Set: make(map[string]float64)}
	seen := make(map[string]bool, len(ops))
	for _, op := range ops {
		if seen[op.Key] {
			return alt, errors.New("duplicate quota key " + op.Key + " not updating quota for this entity")
		}
		seen[op.Key] = true
		if op.Remove {
			alt.Remove = append(alt.Remove, op.Key)
			continue
		}
		if err := quota.ValidateValue(e, op.Key, op.Value); err != nil {
			return alt, err
		}
		alt.Set[op.Key] = op.Value
	}
	return alt, nil
}
