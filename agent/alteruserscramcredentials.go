package agent

// AlterUserScramCredentials (key 51), v0: deletes and upserts SCRAM
// credentials with Kafka's (KRaft) semantics, per user:
//   - a user altered twice in one request (any mix of deletions and
//     upsertions) gets DUPLICATE_RESOURCE and none of its alterations;
//   - an empty name gets UNACCEPTABLE_CREDENTIAL, an unknown mechanism
//     UNSUPPORTED_SASL_MECHANISM, iterations outside [4096, 16384]
//     UNACCEPTABLE_CREDENTIAL;
//   - deleting a credential that does not exist gets RESOURCE_NOT_FOUND.
//
// Needs ALTER on CLUSTER; without it every user named gets
// CLUSTER_AUTHORIZATION_FAILED, as Kafka answers. Everything accepted is
// applied in one metastore transaction. The
// upsertion's salted password is turned into StoredKey and ServerKey here;
// it is never stored.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/auth"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

type scramAlteration struct {
	deletion *metastore.ScramCredentialKey
	upsert   *metastore.ScramCredential
}

type userError struct {
	code int16
	msg  string
}

func (a *Agent) handleAlterUserScramCredentials(ctx context.Context, c *wire.Conn, req kmsg.Request) wire.Reply {
	r := req.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	if !a.access(c).cluster(metastore.OpAlter) {
		seen := map[string]bool{}
		deny := func(user string) {
			if !seen[user] {
				seen[user] = true
				res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
				res.User, res.ErrorCode = user, kerr.ClusterAuthorizationFailed.Code
				res.ErrorMessage = kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Message)
				resp.Results = append(resp.Results, res)
			}
		}
		for _, d := range r.Deletions {
			deny(d.Name)
		}
		for _, u := range r.Upsertions {
			deny(u.Name)
		}
		return wire.Respond(resp)
	}

	var order []string // users, in the order they first appear
	pending := map[string]scramAlteration{}
	failed := map[string]userError{}
	see := func(user string) bool { // false: already failed or now a duplicate
		if _, bad := failed[user]; bad {
			return false
		}
		if _, dup := pending[user]; dup {
			delete(pending, user)
			failed[user] = userError{kerr.DuplicateResource.Code, "A user credential cannot be altered twice in the same request"}
			return false
		}
		order = append(order, user)
		return true
	}
	validate := func(user string, typ int8) (auth.ScramMechanism, *userError) {
		if user == "" {
			return auth.ScramMechanism{}, &userError{kerr.UnacceptableCredential.Code, "Username must not be empty"}
		}
		m, ok := auth.ScramMechanismByType(typ)
		if !ok {
			return auth.ScramMechanism{}, &userError{kerr.UnsupportedSaslMechanism.Code, "Unknown SCRAM mechanism"}
		}
		return m, nil
	}
	for _, d := range r.Deletions {
		if !see(d.Name) {
			continue
		}
		m, uerr := validate(d.Name, d.Mechanism)
		if uerr != nil {
			failed[d.Name] = *uerr
			continue
		}
		pending[d.Name] = scramAlteration{deletion: &metastore.ScramCredentialKey{User: d.Name, Mechanism: m.Name()}}
	}
	for _, u := range r.Upsertions {
		if !see(u.Name) {
			continue
		}
		m, uerr := validate(u.Name, u.Mechanism)
		switch {
		case uerr != nil:
		case u.Iterations < auth.MinScramIterations:
			uerr = &userError{kerr.UnacceptableCredential.Code, "Too few iterations"}
		case u.Iterations > auth.MaxScramIterations:
			uerr = &userError{kerr.UnacceptableCredential.Code, "Too many iterations"}
		case len(u.Salt) == 0 || len(u.SaltedPassword) == 0:
			uerr = &userError{kerr.UnacceptableCredential.Code, "Salt and salted password must not be empty"}
		}
		if uerr != nil {
			failed[u.Name] = *uerr
			continue
		}
		cred := auth.CredentialFromSaltedPassword(u.Name, m, u.Salt, u.Iterations, u.SaltedPassword)
		pending[u.Name] = scramAlteration{upsert: &cred}
	}

	var deletions []metastore.ScramCredentialKey
	var upserts []metastore.ScramCredential
	for _, user := range order {
		if p, ok := pending[user]; ok {
			if p.deletion != nil {
				deletions = append(deletions, *p.deletion)
			} else {
				upserts = append(upserts, *p.upsert)
			}
		}
	}
	if len(deletions)+len(upserts) > 0 {
		notFound, err := a.store.AlterScramCredentials(ctx, deletions, upserts)
		if err != nil {
			a.log.Warn("alter SCRAM credentials failed", "err", err)
			for user := range pending {
				failed[user] = userError{kerr.UnknownServerError.Code, "storing credentials failed"}
			}
		}
		for _, k := range notFound {
			failed[k.User] = userError{kerr.ResourceNotFound.Code, "Attempt to delete a user credential that does not exist"}
		}
	}
	for _, user := range order {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User = user
		if e, bad := failed[user]; bad {
			res.ErrorCode, res.ErrorMessage = e.code, kmsg.StringPtr(e.msg)
		} else {
			p := pending[user]
			what := "upserted"
			if p.deletion != nil {
				what = "deleted"
			}
			a.log.Info(fmt.Sprintf("SCRAM credential %s", what), "user", user, "by", c.Principal())
		}
		resp.Results = append(resp.Results, res)
	}
	return wire.Respond(resp)
}
