package agent

// DescribeAcls (29), CreateAcls (30) and DeleteAcls (31), versions 0–3
// (v0 carries no pattern type: LITERAL, as in Kafka).
//
// As in Kafka: with authorizer=none each answers SECURITY_DISABLED;
// DescribeAcls needs DESCRIBE on the cluster, CreateAcls and DeleteAcls
// ALTER on it (else CLUSTER_AUTHORIZATION_FAILED). A creation with an
// unknown or ANY value, or a principal that is not Type:Name, answers
// INVALID_REQUEST on its own and the others are created. Bindings live in
// the metastore; this agent reloads at once, the others when the store
// notifies them (and every few seconds regardless).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/auth/acl"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleDescribeACLs(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	fail := func(e *kerr.Error, msg string) wire.Reply {
		resp.ErrorCode, resp.ErrorMessage = e.Code, &msg
		return wire.Respond(resp)
	}
	switch {
	case a.acls == nil:
		return fail(kerr.SecurityDisabled, "no authorizer is configured (authorizer=none)")
	case !a.access(c).cluster(metastore.OpDescribe):
		return fail(kerr.ClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed.Message)
	}
	f := aclFilter(req.ResourceType, req.ResourceName, req.ResourcePatternType, req.Principal, req.Host, req.Operation, req.PermissionType)
	if err := validateFilter(f); err != "" {
		return fail(kerr.InvalidRequest, err)
	}
	bs, err := a.store.ACLs(ctx, f)
	if err != nil {
		a.log.Warn("describe acls", "err", err)
		return fail(kerr.UnknownServerError, err.Error())
	}
	// One resource per (type, name, pattern), in the store's order.
	for _, b := range bs {
		n := len(resp.Resources)
		if n == 0 || resp.Resources[n-1].ResourceType != kmsg.ACLResourceType(b.ResourceType) ||
			resp.Resources[n-1].ResourceName != b.ResourceName || resp.Resources[n-1].ResourcePatternType != kmsg.ACLResourcePatternType(b.PatternType) {
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType, r.ResourceName, r.ResourcePatternType = kmsg.ACLResourceType(b.ResourceType), b.ResourceName, kmsg.ACLResourcePatternType(b.PatternType)
			resp.Resources = append(resp.Resources, r)
			n++
		}
		e := kmsg.NewDescribeACLsResponseResourceACL()
		e.Principal, e.Host, e.Operation, e.PermissionType = b.Principal, b.Host, kmsg.ACLOperation(b.Operation), kmsg.ACLPermissionType(b.Permission)
		resp.Resources[n-1].ACLs = append(resp.Resources[n-1].ACLs, e)
	}
	return wire.Respond(resp)
}

func (a *Agent) handleCreateACLs(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	code, msg := a.aclChangeRefused(c)
	var valid []metastore.ACL
	var slots []int
	for i, cr := range req.Creations {
		r := &resp.Results[i]
		*r = kmsg.NewCreateACLsResponseResult()
		if code != 0 {
			r.ErrorCode, r.ErrorMessage = code, &msg
			continue
		}
		b := metastore.ACL{
			ResourceType: metastore.ACLResourceType(cr.ResourceType), ResourceName: cr.ResourceName,
			PatternType: metastore.ACLPatternType(cr.ResourcePatternType), Principal: cr.Principal, Host: cr.Host,
			Operation: metastore.ACLOperation(cr.Operation), Permission: metastore.ACLPermission(cr.PermissionType),
		}
		if err := acl.ValidateBinding(b); err != nil {
			m := err.Error()
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, &m
			continue
		}
		valid = append(valid, b)
		slots = append(slots, i)
	}
	if len(valid) == 0 {
		return wire.Respond(resp)
	}
	if err := a.store.CreateACLs(ctx, valid); err != nil {
		a.log.Warn("create acls", "err", err)
		m := err.Error()
		for _, i := range slots {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.UnknownServerError.Code, &m
		}
		return wire.Respond(resp)
	}
	for _, b := range valid {
		a.log.Info("created acl", "acl", acl.String(b), "by", a.access(c).principal)
	}
	a.reloadACLs(ctx)
	return wire.Respond(resp)
}

func (a *Agent) handleDeleteACLs(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	code, msg := a.aclChangeRefused(c)
	var filters []metastore.ACLFilter
	var slots []int
	for i, rf := range req.Filters {
		r := &resp.Results[i]
		*r = kmsg.NewDeleteACLsResponseResult()
		if code != 0 {
			r.ErrorCode, r.ErrorMessage = code, &msg
			continue
		}
		f := aclFilter(rf.ResourceType, rf.ResourceName, rf.ResourcePatternType, rf.Principal, rf.Host, rf.Operation, rf.PermissionType)
		if m := validateFilter(f); m != "" {
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, &m
			continue
		}
		filters = append(filters, f)
		slots = append(slots, i)
	}
	if len(filters) == 0 {
		return wire.Respond(resp)
	}
	deleted, err := a.store.DeleteACLs(ctx, filters)
	if err != nil {
		a.log.Warn("delete acls", "err", err)
		m := err.Error()
		for _, i := range slots {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.UnknownServerError.Code, &m
		}
		return wire.Respond(resp)
	}
	for k, i := range slots {
		for _, b := range deleted[k] {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = kmsg.ACLResourceType(b.ResourceType), b.ResourceName, kmsg.ACLResourcePatternType(b.PatternType)
			m.Principal, m.Host = b.Principal, b.Host
			m.Operation, m.PermissionType = kmsg.ACLOperation(b.Operation), kmsg.ACLPermissionType(b.Permission)
			resp.Results[i].MatchingACLs = append(resp.Results[i].MatchingACLs, m)
			a.log.Info("deleted acl", "acl", acl.String(b), "by", a.access(c).principal)
		}
	}
	a.reloadACLs(ctx)
	return wire.Respond(resp)
}

// reloadACLs makes this agent enforce a change it just stored before it
// answers; other agents hear of it through the store.
func (a *Agent) reloadACLs(ctx context.Context) {
	if err := a.acls.Reload(ctx); err != nil {
		a.log.Warn("reload acls after a change", "err", err)
		a.acls.Changed() // Run retries
	}
}

func aclFilter(rt kmsg.ACLResourceType, name *string, pt kmsg.ACLResourcePatternType, principal, host *string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) metastore.ACLFilter {
	return metastore.ACLFilter{
		ResourceType: metastore.ACLResourceType(rt), ResourceName: name, PatternType: metastore.ACLPatternType(pt),
		Principal: principal, Host: host, Operation: metastore.ACLOperation(op), Permission: metastore.ACLPermission(perm),
	}
}

// validateFilter refuses UNKNOWN and out-of-range values, as Kafka does.
func validateFilter(f metastore.ACLFilter) string {
	switch {
	case f.ResourceType < metastore.ResourceAny || f.ResourceType > metastore.ResourceTransactionalID:
		return "invalid resource type filter"
	case f.PatternType < metastore.PatternAny || f.PatternType > metastore.PatternPrefixed:
		return "invalid pattern type filter"
	case f.Operation < metastore.OpAny || f.Operation > metastore.OpIdempotentWrite:
		return "invalid operation filter"
	case f.Permission < metastore.PermissionAny || f.Permission > metastore.PermissionAllow:
		return "invalid permission filter"
	}
	return ""
}

// aclChangeRefused is why CreateAcls or DeleteAcls may not change
// anything: no authorizer (SECURITY_DISABLED, as Kafka answers), or no
// ALTER on the cluster. Code 0 lets them go ahead.
func (a *Agent) aclChangeRefused(c *wire.Conn) (code int16, msg string) {
	switch {
	case a.acls == nil:
		return kerr.SecurityDisabled.Code, "no authorizer is configured (authorizer=none)"
	case !a.access(c).cluster(metastore.OpAlter):
		return kerr.ClusterAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Message
	}
	return 0, ""
}
