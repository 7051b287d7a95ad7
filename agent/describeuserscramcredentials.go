package agent

// DescribeUserScramCredentials (key 50), v0: the SCRAM mechanisms and
// iteration counts of the users asked for, or of every user if the list is
// null or empty, as Kafka answers it: RESOURCE_NOT_FOUND for a user
// without credentials, DUPLICATE_RESOURCE (once) for a user asked for
// twice. Salts and keys are never returned. Needs DESCRIBE on CLUSTER
// (else a top-level CLUSTER_AUTHORIZATION_FAILED).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/auth"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleDescribeUserScramCredentials(ctx context.Context, c *wire.Conn, req kmsg.Request) wire.Reply {
	r := req.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if !a.access(c).cluster(metastore.OpDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Message)
		return wire.Respond(resp)
	}

	var users []string // nil: all
	var dups []string
	if len(r.Users) > 0 {
		count := map[string]int{}
		for _, u := range r.Users {
			if count[u.Name]++; count[u.Name] == 1 {
				users = append(users, u.Name)
			}
		}
		unique := users[:0:0]
		for _, u := range users {
			if count[u] > 1 {
				dups = append(dups, u)
			} else {
				unique = append(unique, u)
			}
		}
		users = unique
	}
	var creds []metastore.ScramCredential
	if users == nil || len(users) > 0 {
		var err error
		if creds, err = a.store.ScramCredentials(ctx, users); err != nil {
			a.log.Warn("describe SCRAM credentials failed", "err", err)
			resp.ErrorCode = kerr.UnknownServerError.Code
			resp.ErrorMessage = kmsg.StringPtr("reading credentials failed")
			return wire.Respond(resp)
		}
	}
	byUser := map[string][]kmsg.DescribeUserSCRAMCredentialsResponseResultCredentialInfo{}
	var order []string
	for _, c := range creds {
		m, ok := auth.ScramMechanismByName(c.Mechanism)
		if !ok {
			continue
		}
		if _, seen := byUser[c.User]; !seen {
			order = append(order, c.User)
		}
		info := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
		info.Mechanism, info.Iterations = m.Type(), c.Iterations
		byUser[c.User] = append(byUser[c.User], info)
	}
	if users != nil {
		order = users
	}
	for _, u := range order {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = u
		if infos, ok := byUser[u]; ok {
			res.CredentialInfos = infos
		} else {
			res.ErrorCode = kerr.ResourceNotFound.Code
			res.ErrorMessage = kmsg.StringPtr("Attempt to describe a user credential that does not exist: " + u)
		}
		resp.Results = append(resp.Results, res)
	}
	for _, u := range dups {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = u
		res.ErrorCode = kerr.DuplicateResource.Code
		res.ErrorMessage = kmsg.StringPtr("Cannot describe SCRAM credentials for the same user twice in a single request: " + u)
		resp.Results = append(resp.Results, res)
	}
	return wire.Respond(resp)
}
