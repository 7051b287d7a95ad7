package wire

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestKgoClient drives the server with franz-go's client: ApiVersions
// negotiation (kgo opens with ApiVersions v5, which we answer per KIP-511 so
// it retries with v4), version capping to what the registry advertises, and
// routing through the broker list our Metadata handler returns.
func TestKgoClient(t *testing.T) {
	h := &testHandlers{}
	_, addr := startServer(t, Config{}, newTestRegistry(h))

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("wire-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	if len(meta.Brokers) != 1 || meta.Brokers[0].NodeID != 0 {
		t.Fatalf("Metadata brokers %+v", meta.Brokers)
	}
	if _, ok := h.metadataVersions.Load(int16(12)); !ok {
		t.Errorf("kgo did not use Metadata v12, the highest advertised")
	}
	if sw := h.lastSoftware.Load(); sw == nil || sw[0] != "kgo" || sw[1] == "" {
		t.Errorf("ClientSoftware = %v, want kgo and a version", sw)
	}
	if id := h.lastClientID.Load(); id == nil || *id != "wire-test" {
		t.Errorf("ClientID = %v, want wire-test", id)
	}

	// CreateTopics goes to the controller named in our Metadata: a second
	// connection, to the broker address we advertised.
	req := kmsg.NewPtrCreateTopicsRequest()
	for _, name := range []string{"a", "b"} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	if len(resp.Topics) != 2 || resp.Topics[0].Topic != "a" || resp.Topics[1].Topic != "b" {
		t.Fatalf("CreateTopics echo %+v", resp.Topics)
	}
	if v := h.createTopicsVersion.Load(); v != 4 {
		t.Fatalf("kgo used CreateTopics v%d, want 4 (our maximum)", v)
	}

	// A pipelined burst through one client.
	errs := make(chan error, 50)
	for range 50 {
		go func() {
			r := kmsg.NewPtrMetadataRequest()
			_, err := r.RequestWith(ctx, cl)
			errs <- err
		}()
	}
	for range 50 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Metadata: %v", err)
		}
	}
}
