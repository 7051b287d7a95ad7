package agent_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Issue 11, item 5: a topic deleted and re-created through one agent must
// never be answered with the old topic's data or offsets by another agent
// that had the old one cached — not to a client fetching by name (Fetch
// v12, where the tail cache still holds the old index rows), not in
// ListOffsets or Metadata — and a group's offsets committed on the old
// topic must not carry over to the new one.
func TestRecreatedTopicIsNeverTheOldOne(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, "", "")
	clA := pinnedClient(t, agents[0].addr)
	v12 := kversion.Stable()
	v12.SetMaxKeyVersion(kmsg.Fetch.Int16(), 12) // by name, as before topic ids
	clB, err := kgo.NewClient(kgo.SeedBrokers(agents[1].addr), kgo.MaxVersions(v12))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(clB.Close)
	// Requests straight to each agent: no routing to a leader or controller.
	a, b := clA.SeedBrokers()[0], clB.SeedBrokers()[0]

	createTopicAt(t, a, "re")
	for _, v := range []string{"old-0", "old-1", "old-2"} {
		produceTo(t, a, "re", batch(v))
	}
	oldID := topicID(t, clA, "re")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(clA)
	if err := adm.CommitAllOffsets(ctx, "g", kadm.OffsetsFromRecords(kgo.Record{Topic: "re", Partition: 0, Offset: 2})); err != nil {
		t.Fatal(err)
	}
	// b caches the topic and its tail.
	if rp := fetchByName(t, b, "re", 0); rp.ErrorCode != 0 || rp.HighWatermark != 3 || !bytes.Contains(rp.RecordBatches, []byte("old-0")) {
		t.Fatalf("fetch via b before the delete: %v, high watermark %d", kerr.ErrorForCode(rp.ErrorCode), rp.HighWatermark)
	}

	deleteTopicAt(t, a, "re")
	createTopicAt(t, a, "re")
	produceTo(t, a, "re", batch("new-0"))

	for _, off := range []int64{0, 2} {
		rp := fetchByName(t, b, "re", off)
		if bytes.Contains(rp.RecordBatches, []byte("old-")) || rp.HighWatermark == 3 {
			t.Fatalf("fetch at %d via b after the re-create: the old topic's data (high watermark %d)", off, rp.HighWatermark)
		}
		if off == 0 && (rp.ErrorCode != 0 || !bytes.Contains(rp.RecordBatches, []byte("new-0"))) {
			t.Fatalf("fetch at 0 via b after the re-create: %v, high watermark %d; want the new record",
				kerr.ErrorForCode(rp.ErrorCode), rp.HighWatermark)
		}
	}
	if o := latestFrom(t, b, "re"); o != 1 {
		t.Fatalf("latest offset via b after the re-create: %d, the new topic has 1", o)
	}
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("re")
	md.Topics = append(md.Topics, mt)
	mresp, err := md.RequestWith(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := mresp.Topics[0]; got.ErrorCode != 0 || got.TopicID == oldID {
		t.Fatalf("metadata via b after the re-create: %v, id %x (the old id is %x)", kerr.ErrorForCode(got.ErrorCode), got.TopicID, oldID)
	}
	offs, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("re", 0); ok {
		t.Fatalf("group g resumes the re-created topic at %d, committed on the old one", o.At)
	}
}

// fetchByName fetches partition 0 of topic from offset straight from one
// agent, with the version the agent's client allows.
func fetchByName(t *testing.T, from kmsg.Requestor, topic string, offset int64) kmsg.FetchResponseTopicPartition {
	t.Helper()
	return fetchFrom(t, from, topic, [16]byte{}, offset)
}

// createTopicAt creates a one-partition topic through one agent. A create
// refused because the name's deletion is still pending is retried.
func createTopicAt(t *testing.T, at kmsg.Requestor, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 5000
		resp, err := req.RequestWith(ctx, at)
		if err != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
		switch code := resp.Topics[0].ErrorCode; code {
		case 0:
			return
		case kerr.TopicAlreadyExists.Code:
			// The previous topic of that name is still being deleted.
		default:
			t.Fatalf("create topic %s: %v", name, kerr.ErrorForCode(code))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("create topic %s: still refused when the deadline passed", name)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// deleteTopicAt deletes a topic through one agent.
func deleteTopicAt(t *testing.T, at kmsg.Requestor, name string) {
	t.Helper()
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = 5000
	req.TopicNames = []string{name}
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = &name
	req.Topics = append(req.Topics, dt)
	resp, err := req.RequestWith(context.Background(), at)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("delete topic %s: %v", name, kerr.ErrorForCode(code))
	}
}
