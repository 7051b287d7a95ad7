package metastoretest

import (
	"reflect"
	"testing"

	"github.com/siltstream/silt/metastore"
)

func testClientQuotas(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	if got, err := s.ClientQuotas(ctx); err != nil || len(got) != 0 {
		t.Fatalf("ClientQuotas on an empty store = %v, %v; want none", got, err)
	}
	alice := metastore.QuotaEntity{User: metastore.Named("alice")}
	aliceApp := metastore.QuotaEntity{User: metastore.Named("alice"), ClientID: metastore.Named("app")}
	defaultUser := metastore.QuotaEntity{User: metastore.DefaultName()}
	defaultClient := metastore.QuotaEntity{ClientID: metastore.DefaultName()}
	ip := metastore.QuotaEntity{IP: metastore.Named("10.0.0.1")}
	err := s.AlterClientQuotas(ctx, []metastore.QuotaAlteration{
		{Entity: aliceApp, Set: map[string]float64{"producer_byte_rate": 1024, "consumer_byte_rate": 2048}},
		{Entity: alice, Set: map[string]float64{"request_percentage": 12.5}},
		{Entity: defaultUser, Set: map[string]float64{"producer_byte_rate": 1e6}},
		{Entity: defaultClient, Set: map[string]float64{"consumer_byte_rate": 5}},
		{Entity: ip, Set: map[string]float64{"connection_creation_rate": 7}},
	})
	if err != nil {
		t.Fatalf("AlterClientQuotas: %v", err)
	}
	want := []metastore.ClientQuota{
		{Entity: ip, Values: map[string]float64{"connection_creation_rate": 7}},
		{Entity: defaultClient, Values: map[string]float64{"consumer_byte_rate": 5}},
		{Entity: defaultUser, Values: map[string]float64{"producer_byte_rate": 1e6}},
		{Entity: alice, Values: map[string]float64{"request_percentage": 12.5}},
		{Entity: aliceApp, Values: map[string]float64{"producer_byte_rate": 1024, "consumer_byte_rate": 2048}},
	}
	got, err := s.ClientQuotas(ctx)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ClientQuotas = %v, %v; want %v", got, err, want)
	}

	// Overwrite one key, remove another and one never set, and remove
	// an entity's last key: the entity is gone.
	err = s.AlterClientQuotas(ctx, []metastore.QuotaAlteration{
		{Entity: aliceApp, Set: map[string]float64{"producer_byte_rate": 4096}, Remove: []string{"consumer_byte_rate", "request_percentage"}},
		{Entity: defaultClient, Remove: []string{"consumer_byte_rate"}},
		{Entity: metastore.QuotaEntity{ClientID: metastore.Named("nobody")}, Remove: []string{"consumer_byte_rate"}},
	})
	if err != nil {
		t.Fatalf("AlterClientQuotas again: %v", err)
	}
	want = []metastore.ClientQuota{
		{Entity: ip, Values: map[string]float64{"connection_creation_rate": 7}},
		{Entity: defaultUser, Values: map[string]float64{"producer_byte_rate": 1e6}},
		{Entity: alice, Values: map[string]float64{"request_percentage": 12.5}},
		{Entity: aliceApp, Values: map[string]float64{"producer_byte_rate": 4096}},
	}
	got, err = s.ClientQuotas(ctx)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ClientQuotas after changes = %v, %v; want %v", got, err, want)
	}
}
