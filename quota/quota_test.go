package quota

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/siltstream/silt/metastore"
)

type staticStore []metastore.ClientQuota

func (s staticStore) ClientQuotas(context.Context) ([]metastore.ClientQuota, error) { return s, nil }

func q(e metastore.QuotaEntity, v float64) metastore.ClientQuota {
	return metastore.ClientQuota{Entity: e, Values: map[string]float64{ProducerByteRate: v}}
}

// TestResolvePrecedence removes the most specific entity one at a time
// and checks the next one in Kafka's order applies, measured in the
// sensor Kafka's metric tags would name.
func TestResolvePrecedence(t *testing.T) {
	u, du := metastore.Named("alice"), metastore.DefaultName()
	c, dc := metastore.Named("app"), metastore.DefaultName()
	levels := []struct {
		e   metastore.QuotaEntity
		key sensorKey
	}{
		{metastore.QuotaEntity{User: u, ClientID: c}, sensorKey{Produce, "alice", "app"}},
		{metastore.QuotaEntity{User: u, ClientID: dc}, sensorKey{Produce, "alice", "app"}},
		{metastore.QuotaEntity{User: u}, sensorKey{Produce, "alice", ""}},
		{metastore.QuotaEntity{User: du, ClientID: c}, sensorKey{Produce, "alice", "app"}},
		{metastore.QuotaEntity{User: du, ClientID: dc}, sensorKey{Produce, "alice", "app"}},
		{metastore.QuotaEntity{User: du}, sensorKey{Produce, "alice", ""}},
		{metastore.QuotaEntity{ClientID: c}, sensorKey{Produce, "", "app"}},
		{metastore.QuotaEntity{ClientID: dc}, sensorKey{Produce, "", "app"}},
	}
	for i := range levels {
		var qs []metastore.ClientQuota
		for j := i; j < len(levels); j++ {
			qs = append(qs, q(levels[j].e, float64(j+1)))
		}
		// Another user's and another client's entries never apply.
		qs = append(qs, q(metastore.QuotaEntity{User: metastore.Named("bob")}, 100), q(metastore.QuotaEntity{ClientID: metastore.Named("other")}, 100))
		b, k, ok := newImage(qs).resolve(Produce, "alice", "app")
		if !ok || b != float64(i+1) || k != levels[i].key {
			t.Errorf("level %d: resolve = %v, %+v, %v; want %d, %+v", i+1, b, k, ok, i+1, levels[i].key)
		}
		if _, _, ok := newImage(qs).resolve(Fetch, "alice", "app"); ok {
			t.Errorf("level %d: a producer quota applied to fetches", i+1)
		}
	}
	if _, _, ok := newImage(nil).resolve(Produce, "alice", "app"); ok {
		t.Error("a quota applied with none configured")
	}
}

// TestRateConvergesToQuota drives a client that always sends again as
// soon as its throttle allows, on a fake clock: over a long run it gets
// the quota, plus the first window's burst.
func TestRateConvergesToQuota(t *testing.T) {
	now := time.Unix(1000, 0)
	e := New(Config{Now: func() time.Time { return now }}, staticStore{q(metastore.QuotaEntity{ClientID: metastore.Named("app")}, 1000)})
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := now
	var sent float64
	throttled := false
	for now.Sub(start) < 10*time.Minute {
		d := e.Record(Produce, "ANONYMOUS", "app", 500)
		sent += 500
		if d > 0 {
			throttled = true
		}
		now = now.Add(max(d, 10*time.Millisecond))
	}
	got := sent / now.Sub(start).Seconds()
	if !throttled || got < 950 || got > 1100 {
		t.Fatalf("rate over ten minutes = %.0f B/s (throttled %v); want about 1000", got, throttled)
	}
	if e.Throttled(Produce) <= 0 || e.Throttled(Fetch) != 0 {
		t.Fatalf("throttled produce %v, fetch %v", e.Throttled(Produce), e.Throttled(Fetch))
	}
	// Another client id has no quota, records nothing and keeps no sensor.
	if d := e.Record(Produce, "ANONYMOUS", "free", 1e9); d != 0 || e.Sensors() != 1 {
		t.Fatalf("unquota'd client: throttle %v, sensors %d", d, e.Sensors())
	}
	// Sensors unused for an hour are dropped.
	now = now.Add(inactiveExpiry)
	e.expire()
	if e.Sensors() != 0 {
		t.Fatalf("sensors after an idle hour = %d", e.Sensors())
	}
}

// TestSensorsBounded: client ids made up by the thousand keep at most
// maxSensors sensors.
func TestSensorsBounded(t *testing.T) {
	e := New(Config{}, staticStore{q(metastore.QuotaEntity{ClientID: metastore.DefaultName()}, 1000)})
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < maxSensors+50; i++ {
		e.Record(Produce, "u", string(rune('a'+i%26))+time.Duration(i).String(), 1)
	}
	if n := e.Sensors(); n != maxSensors {
		t.Fatalf("sensors = %d; want %d", n, maxSensors)
	}
}

func TestUndoOnThrottle(t *testing.T) {
	now := time.Unix(1000, 0)
	e := New(Config{Now: func() time.Time { return now }}, staticStore{{Entity: metastore.QuotaEntity{ClientID: metastore.Named("c")}, Values: map[string]float64{ConsumerByteRate: 100}}})
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := e.RecordUnlessThrottled(Fetch, "u", "c", 5000); d == 0 {
		t.Fatal("5000 bytes within a 100 B/s quota's window")
	}
	// Taken back: the window's 1000 bytes still fit.
	if d := e.RecordUnlessThrottled(Fetch, "u", "c", 900); d != 0 {
		t.Fatalf("throttled %v after the throttled fetch was undone", d)
	}
}

func TestValidate(t *testing.T) {
	s := func(v string) *string { return &v }
	bad := [][]Component{
		nil,
		{{Type: "group", Name: s("g")}},
		{{Type: TypeUser, Name: s("a")}, {Type: TypeUser}},
		{{Type: TypeUser, Name: s("")}},
		{{Type: TypeIP, Name: s("1.2.3.4")}, {Type: TypeUser}},
		{{Type: TypeIP, Name: s("not-an-ip")}},
	}
	for _, cs := range bad {
		if _, err := ParseEntity(cs); err == nil {
			t.Errorf("ParseEntity(%v) accepted", cs)
		}
	}
	user, err := ParseEntity([]Component{{Type: TypeUser, Name: s("a")}, {Type: TypeClientID}})
	if err != nil || user != (metastore.QuotaEntity{User: metastore.Named("a"), ClientID: metastore.DefaultName()}) {
		t.Fatalf("ParseEntity(user a, default client) = %+v, %v", user, err)
	}
	ip, err := ParseEntity([]Component{{Type: TypeIP}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		e   metastore.QuotaEntity
		key string
		v   float64
		ok  bool
	}{
		{user, ProducerByteRate, 1024, true},
		{user, ProducerByteRate, 10.5, false},
		{user, ProducerByteRate, 0, false},
		{user, ProducerByteRate, -1, false},
		{user, RequestPercentage, 12.5, true},
		{user, ControllerMutationRate, 0.5, true},
		{user, ConnectionCreationRate, 5, false},
		{user, "bogus", 5, false},
		{ip, ConnectionCreationRate, 5, true},
		{ip, ConnectionCreationRate, 1e12, false},
		{ip, ProducerByteRate, 5, false},
	} {
		if err := ValidateValue(c.e, c.key, c.v); (err == nil) != c.ok {
			t.Errorf("ValidateValue(%+v, %s, %v) = %v; want ok %v", c.e, c.key, c.v, err, c.ok)
		}
	}
}

// TestConnectionRate: connections from an IP beyond its
// connection_creation_rate are refused for a while, and not counted; the
// default IP entity applies to IPs without their own; IPv4-mapped
// addresses are the IPv4 address.
func TestConnectionRate(t *testing.T) {
	now := time.Unix(1000, 0)
	e := New(Config{Now: func() time.Time { return now }}, staticStore{
		{Entity: metastore.QuotaEntity{IP: metastore.Named("10.0.0.1")}, Values: map[string]float64{ConnectionCreationRate: 1}},
		{Entity: metastore.QuotaEntity{IP: metastore.DefaultName()}, Values: map[string]float64{ConnectionCreationRate: 100}},
	})
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("::ffff:10.0.0.1")
	for i := 0; i < 10; i++ { // ten seconds' worth pass at once
		if d := e.RecordConnection(ip); d != 0 {
			t.Fatalf("connection %d throttled %v", i, d)
		}
	}
	if d := e.RecordConnection(ip); d == 0 {
		t.Fatal("the eleventh connection within a second passed a quota of 1/s")
	}
	if d := e.RecordConnection(netip.MustParseAddr("10.0.0.2")); d != 0 {
		t.Fatalf("another IP, under the default quota, throttled %v", d)
	}
	now = now.Add(12 * time.Second)
	if d := e.RecordConnection(ip); d != 0 {
		t.Fatalf("throttled %v after the window passed", d)
	}
}
