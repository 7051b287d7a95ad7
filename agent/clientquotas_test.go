package agent_test

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/quota"
)

func sp(s string) *string { return &s }

// quotaEntity builds a kadm entity from type/name pairs; a nil name is
// the default.
func quotaEntity(kv ...any) kadm.ClientQuotaEntity {
	var e kadm.ClientQuotaEntity
	for i := 0; i < len(kv); i += 2 {
		c := kadm.ClientQuotaEntityComponent{Type: kv[i].(string)}
		if n, ok := kv[i+1].(string); ok {
			c.Name = &n
		}
		e = append(e, c)
	}
	return e
}

// describedStrings renders described quotas as sorted "entity: values"
// strings, independent of order.
func describedStrings(ds kadm.DescribedClientQuotas) []string {
	var out []string
	for _, d := range ds {
		vs := append(kadm.ClientQuotaValues(nil), d.Values...)
		sort.Slice(vs, func(i, j int) bool { return vs[i].Key < vs[j].Key })
		s := d.Entity.String() + ":"
		for _, v := range vs {
			s += " " + v.String()
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// TestClientQuotasAdmin: kadm's AlterClientQuotas and
// DescribeClientQuotas round trip with every match type and strict, and
// what Kafka refuses is refused with Kafka's codes.
func TestClientQuotasAdmin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ta := startAgent(t, bk, nil)
		adm := kadm.NewClient(ta.client(t))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		set := func(k string, v float64) kadm.AlterClientQuotaOp { return kadm.AlterClientQuotaOp{Key: k, Value: v} }
		entries := []kadm.AlterClientQuotaEntry{
			{Entity: quotaEntity("user", "alice"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1024)}},
			{Entity: quotaEntity("user", "alice", "client-id", "app"), Ops: []kadm.AlterClientQuotaOp{set("consumer_byte_rate", 2048), set("request_percentage", 12.5)}},
			{Entity: quotaEntity("user", nil), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 4096)}},
			{Entity: quotaEntity("user", nil, "client-id", nil), Ops: []kadm.AlterClientQuotaOp{set("controller_mutation_rate", 3)}},
			{Entity: quotaEntity("client-id", "app"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 8192)}},
			{Entity: quotaEntity("ip", "10.0.0.1"), Ops: []kadm.AlterClientQuotaOp{set("connection_creation_rate", 5)}},
			{Entity: quotaEntity("ip", nil), Ops: []kadm.AlterClientQuotaOp{set("connection_creation_rate", 50)}},
		}
		// ValidateOnly stores nothing.
		if res, err := adm.ValidateAlterClientQuotas(ctx, entries); err != nil || firstQuotaErr(res) != nil {
			t.Fatalf("validate = %v, %v", res, firstQuotaErr(res))
		}
		if got, err := adm.DescribeClientQuotas(ctx, false, nil); err != nil || len(got) != 0 {
			t.Fatalf("after validate only: %v, %v; want nothing stored", describedStrings(got), err)
		}
		if res, err := adm.AlterClientQuotas(ctx, entries); err != nil || firstQuotaErr(res) != nil {
			t.Fatalf("alter = %v, %v", res, firstQuotaErr(res))
		}

		all := []string{
			"{client-id=app}: producer_byte_rate=8192.000000",
			"{ip=10.0.0.1}: connection_creation_rate=5.000000",
			"{ip=<default>}: connection_creation_rate=50.000000",
			"{user=<default>, client-id=<default>}: controller_mutation_rate=3.000000",
			"{user=<default>}: producer_byte_rate=4096.000000",
			"{user=alice, client-id=app}: consumer_byte_rate=2048.000000 request_percentage=12.500000",
			"{user=alice}: producer_byte_rate=1024.000000",
		}
		sort.Strings(all)
		exact := func(typ, name string) kadm.DescribeClientQuotaComponent {
			return kadm.DescribeClientQuotaComponent{Type: typ, MatchName: &name, MatchType: 0}
		}
		def := func(typ string) kadm.DescribeClientQuotaComponent {
			return kadm.DescribeClientQuotaComponent{Type: typ, MatchType: 1}
		}
		anyOf := func(typ string) kadm.DescribeClientQuotaComponent {
			return kadm.DescribeClientQuotaComponent{Type: typ, MatchType: 2}
		}
		cases := []struct {
			name   string
			strict bool
			f      []kadm.DescribeClientQuotaComponent
			want   []string
		}{
			{"everything", false, nil, all},
			{"strict, no components: nothing", true, nil, nil},
			{"exact user", false, []kadm.DescribeClientQuotaComponent{exact("user", "alice")}, []string{all[5], all[6]}},
			{"exact user, strict", true, []kadm.DescribeClientQuotaComponent{exact("user", "alice")}, []string{all[6]}},
			{"default user", false, []kadm.DescribeClientQuotaComponent{def("user")}, []string{all[3], all[4]}},
			{"default user, strict", true, []kadm.DescribeClientQuotaComponent{def("user")}, []string{all[4]}},
			{"any client id", false, []kadm.DescribeClientQuotaComponent{anyOf("client-id")}, []string{all[0], all[3], all[5]}},
			{"any client id, strict", true, []kadm.DescribeClientQuotaComponent{anyOf("client-id")}, []string{all[0]}},
			{"exact user and any client id", true, []kadm.DescribeClientQuotaComponent{exact("user", "alice"), anyOf("client-id")}, []string{all[5]}},
			{"default user and default client id", true, []kadm.DescribeClientQuotaComponent{def("user"), def("client-id")}, []string{all[3]}},
			{"any ip", false, []kadm.DescribeClientQuotaComponent{anyOf("ip")}, []string{all[1], all[2]}},
			{"exact ip", false, []kadm.DescribeClientQuotaComponent{exact("ip", "10.0.0.1")}, []string{all[1]}},
			{"no such user", false, []kadm.DescribeClientQuotaComponent{exact("user", "bob")}, nil},
		}
		for _, c := range cases {
			got, err := adm.DescribeClientQuotas(ctx, c.strict, c.f)
			if err != nil || !reflect.DeepEqual(describedStrings(got), c.want) {
				t.Errorf("describe %s = %q, %v; want %q", c.name, describedStrings(got), err, c.want)
			}
		}

		// Remove one key, and an entity's last key: it is gone.
		res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
			{Entity: quotaEntity("user", "alice", "client-id", "app"), Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Remove: true}}},
			{Entity: quotaEntity("ip", nil), Ops: []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Remove: true}}},
		})
		if err != nil || firstQuotaErr(res) != nil {
			t.Fatalf("remove = %v, %v", err, firstQuotaErr(res))
		}
		got, err := adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{anyOf("ip")})
		if err != nil || !reflect.DeepEqual(describedStrings(got), []string{all[1]}) {
			t.Errorf("ips after removal = %q, %v", describedStrings(got), err)
		}
		got, err = adm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{exact("user", "alice"), exact("client-id", "app")})
		if want := []string{"{user=alice, client-id=app}: request_percentage=12.500000"}; err != nil || !reflect.DeepEqual(describedStrings(got), want) {
			t.Errorf("alice/app after removal = %q, %v; want %q", describedStrings(got), err, want)
		}

		// Invalid alterations: INVALID_REQUEST each, the valid entry in
		// the same request applied.
		bad := []kadm.AlterClientQuotaEntry{
			{Entity: quotaEntity("user", "bob"), Ops: []kadm.AlterClientQuotaOp{set("no_such_key", 1)}},
			{Entity: quotaEntity("user", "bob"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", -5)}},
			{Entity: quotaEntity("client-id", "c"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 10.5)}},
			{Entity: quotaEntity("client-id", "d"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 0)}},
			{Entity: quotaEntity("ip", "10.0.0.2", "user", "bob"), Ops: []kadm.AlterClientQuotaOp{set("connection_creation_rate", 1)}},
			{Entity: quotaEntity("ip", "not an ip"), Ops: []kadm.AlterClientQuotaOp{set("connection_creation_rate", 1)}},
			{Entity: quotaEntity("ip", "10.0.0.3"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1)}},
			{Entity: quotaEntity("group", "g"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1)}},
			{Entity: quotaEntity("user", ""), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1)}},
			{Entity: quotaEntity("client-id", "e"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1), set("producer_byte_rate", 2)}},
			{Entity: nil, Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1)}},
			{Entity: quotaEntity("client-id", "good"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 100)}},
		}
		res, err = adm.AlterClientQuotas(ctx, bad)
		if err != nil || len(res) != len(bad) {
			t.Fatalf("alter invalid = %v, %v", res, err)
		}
		for i, r := range res[:len(res)-1] {
			if !errors.Is(r.Err, kerr.InvalidRequest) {
				t.Errorf("entry %d (%v): err %v; want INVALID_REQUEST", i, bad[i].Entity, r.Err)
			}
		}
		if r := res[len(res)-1]; r.Err != nil {
			t.Errorf("the valid entry: %v", r.Err)
		}
		got, err = adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{anyOf("client-id")})
		if err != nil || len(got) != 4 { // app, default/default, alice/app, good
			t.Errorf("client ids after invalid alterations = %q, %v", describedStrings(got), err)
		}

		// Invalid filters.
		cl := ta.client(t)
		for _, c := range []struct {
			name  string
			comps []kmsg.DescribeClientQuotasRequestComponent
			want  *kerr.Error
		}{
			{"exact without a name", []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "user", MatchType: 0}}, kerr.InvalidRequest},
			{"default with a name", []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "user", MatchType: 1, Match: sp("x")}}, kerr.InvalidRequest},
			{"type twice", []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "user", MatchType: 2}, {EntityType: "user", MatchType: 1}}, kerr.InvalidRequest},
			{"ip with user", []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "ip", MatchType: 2}, {EntityType: "user", MatchType: 2}}, kerr.InvalidRequest},
			{"unknown match type", []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "user", MatchType: 7}}, kerr.InvalidRequest},
			{"empty type", []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "", MatchType: 2}}, kerr.InvalidRequest},
			{"unknown type", []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "group", MatchType: 2}}, kerr.UnsupportedVersion},
		} {
			req := kmsg.NewPtrDescribeClientQuotasRequest()
			req.Components = c.comps
			resp, err := req.RequestWith(ctx, cl)
			if err != nil || resp.ErrorCode != c.want.Code {
				code := int16(0)
				if resp != nil {
					code = resp.ErrorCode
				}
				t.Errorf("describe with %s: code %d, %v; want %s", c.name, code, err, c.want.Message)
			}
		}
	})
}

func firstQuotaErr(res kadm.AlteredClientQuotas) error {
	for _, r := range res {
		if r.Err != nil {
			return errors.New(r.Entity.String() + ": " + r.Err.Error() + " " + r.ErrMessage)
		}
	}
	return nil
}

// TestClientQuotasReachEveryAgent: a quota set through one agent is
// applied by another, which learns of it from the store's notification;
// so is its removal.
func TestClientQuotasReachEveryAgent(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, "a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(agents[0].client(t))
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: quotaEntity("client-id", "shared"), Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 5000}},
	}})
	if err != nil || firstQuotaErr(res) != nil {
		t.Fatalf("alter: %v, %v", err, firstQuotaErr(res))
	}
	for _, ta := range agents {
		poll.Until(t, "the quota at every agent", func() bool {
			b, ok := ta.ClientQuotaBound(quota.Produce, "ANONYMOUS", "shared")
			return ok && b == 5000
		})
	}
	res, err = adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: quotaEntity("client-id", "shared"), Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Remove: true}},
	}})
	if err != nil || firstQuotaErr(res) != nil {
		t.Fatalf("remove: %v, %v", err, firstQuotaErr(res))
	}
	for _, ta := range agents {
		poll.Until(t, "the quota gone at every agent", func() bool {
			_, ok := ta.ClientQuotaBound(quota.Produce, "ANONYMOUS", "shared")
			return !ok
		})
	}
}

// TestClientQuotasAuthorization: describing needs DESCRIBE_CONFIGS on the
// cluster and altering ALTER_CONFIGS on it, as in Kafka.
func TestClientQuotasAuthorization(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, withACLs(nil))
	admin, alice := ta.as(t, "admin"), ta.as(t, "alice")
	codes := func(cl requester) (describe, alter int16) {
		d := kmsg.NewPtrDescribeClientQuotasRequest()
		describe = request(t, cl, d).(*kmsg.DescribeClientQuotasResponse).ErrorCode
		a := kmsg.NewPtrAlterClientQuotasRequest()
		e := kmsg.NewAlterClientQuotasRequestEntry()
		ent := kmsg.NewAlterClientQuotasRequestEntryEntity()
		ent.Type, ent.Name = "client-id", sp("app")
		op := kmsg.NewAlterClientQuotasRequestEntryOp()
		op.Key, op.Value = "producer_byte_rate", 1000
		e.Entity, e.Ops = append(e.Entity, ent), append(e.Ops, op)
		a.Entries = append(a.Entries, e)
		alter = request(t, cl, a).(*kmsg.AlterClientQuotasResponse).Entries[0].ErrorCode
		return describe, alter
	}
	if d, a := codes(admin); d != 0 || a != 0 {
		t.Fatalf("admin: describe %d, alter %d", d, a)
	}
	denied := kerr.ClusterAuthorizationFailed.Code
	if d, a := codes(alice); d != denied || a != denied {
		t.Fatalf("alice: describe %d, alter %d; want CLUSTER_AUTHORIZATION_FAILED", d, a)
	}
	// DESCRIBE and ALTER are not enough: Kafka asks for the _CONFIGS
	// operations.
	createACLs(t, admin,
		allow(rtCluster, "kafka-cluster", "alice", kmsg.ACLOperationDescribe),
		allow(rtCluster, "kafka-cluster", "alice", kmsg.ACLOperationAlter))
	if d, a := codes(alice); d != denied || a != denied {
		t.Fatalf("alice with DESCRIBE and ALTER: describe %d, alter %d; want CLUSTER_AUTHORIZATION_FAILED", d, a)
	}
	createACLs(t, admin,
		allow(rtCluster, "kafka-cluster", "alice", kmsg.ACLOperationDescribeConfigs),
		allow(rtCluster, "kafka-cluster", "alice", kmsg.ACLOperationAlterConfigs))
	if d, a := codes(alice); d != 0 || a != 0 {
		t.Fatalf("alice with the grants: describe %d, alter %d", d, a)
	}
}
