package cluster

import (
	"testing"

	"github.com/siltstream/silt/metastore"
)

func TestViewForListener(t *testing.T) {
	var v View
	for _, ag := range []metastore.Agent{
		{ID: "a", Addr: "a.ext:9093", Listeners: []metastore.AgentListener{{Name: "SSL", Addr: "a.ext:9093"}, {Name: "PLAINTEXT", Addr: "127.0.0.1:9092"}}},
		{ID: "b", Addr: "b.ext:9093", Listeners: []metastore.AgentListener{{Name: "SSL", Addr: "b.ext:9093"}}},
		{ID: "old", Addr: "old:9092"}, // registered without listeners: PLAINTEXT at Addr
	} {
		b, ok := brokerOf(ag)
		if !ok {
			t.Fatalf("brokerOf(%+v) failed", ag)
		}
		v.Brokers = append(v.Brokers, b)
	}
	v.Epoch = 7
	ssl := v.ForListener("SSL")
	if len(ssl.Brokers) != 2 || ssl.Brokers[0].Host != "a.ext" || ssl.Brokers[1].Host != "b.ext" || ssl.Epoch != 7 {
		t.Errorf("SSL view = %+v", ssl)
	}
	pt := v.ForListener("PLAINTEXT")
	if len(pt.Brokers) != 2 || pt.Brokers[0].Host != "127.0.0.1" || pt.Brokers[0].Port != 9092 || pt.Brokers[1].Host != "old" {
		t.Errorf("PLAINTEXT view = %+v", pt)
	}
	if n := len(v.ForListener("INTERNAL").Brokers); n != 0 {
		t.Errorf("INTERNAL view has %d brokers, want none", n)
	}
	if _, ok := v.Brokers[1].Endpoint("PLAINTEXT"); ok {
		t.Errorf("b has no PLAINTEXT endpoint")
	}
	if b, ok := (Broker{Host: "h", Port: 1}).Endpoint("PLAINTEXT"); !ok || b.Host != "h" {
		t.Errorf("a Broker built by hand is PLAINTEXT at its address: %+v %v", b, ok)
	}
	// Leaders for SSL clients are SSL brokers.
	for p := range int32(20) {
		l := ssl.LeaderFor(metastore.TopicPartition{Partition: p}, "")
		if l.ID != "a" && l.ID != "b" {
			t.Fatalf("leader for SSL is %s", l.ID)
		}
	}
}
