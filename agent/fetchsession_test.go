package agent_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/siltstream/silt/agent"
)

// sessionFetch sends one Fetch of session id at epoch, naming parts
// (partition → fetch offset) of topic and forgetting forget, and returns
// the response.
func sessionFetch(t *testing.T, ta *testAgent, version int16, topic string, id [16]byte, session, epoch int32, parts map[int32]int64, forget []int32) *kmsg.FetchResponse {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(version)
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 10, 1, 1<<20
	req.SessionID, req.SessionEpoch = session, epoch
	if len(parts) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		ps := make([]int32, 0, len(parts))
		for p := range parts {
			ps = append(ps, p)
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		for _, p := range ps {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, parts[p], 1<<20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	if len(forget) > 0 {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.TopicID, ft.Partitions = topic, id, forget
		req.ForgottenTopics = append(req.ForgottenTopics, ft)
	}
	// kgo sends the highest version both sides speak unless capped.
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(int16(kmsg.Fetch), version)
	cl := ta.client(t, kgo.MaxVersions(vs))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if resp.Version != version {
		t.Fatalf("fetch sent at v%d, want v%d", resp.Version, version)
	}
	return resp
}

// answered lists the partitions a fetch response carries, with how many
// bytes of records each has.
func answered(t *testing.T, resp *kmsg.FetchResponse) map[int32]int {
	t.Helper()
	if resp.ErrorCode != 0 {
		t.Fatalf("fetch: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	out := make(map[int32]int)
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("partition %d: %v", rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
			}
			out[rp.Partition] = len(rp.RecordBatches)
		}
	}
	return out
}

// A fetch session (KIP-227) remembers the partitions a client fetches: an
// incremental fetch names only what changed and is answered only with
// partitions that have records or new offsets; forgotten partitions are
// no longer fetched; wrong epochs, unknown and closed sessions, and a
// switch between topic names and ids are refused with Kafka's codes.
func TestFetchSessionIncremental(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, nil)
	cl := ta.client(t)
	for _, version := range []int16{12, 13} {
		t.Run(fmt.Sprint("v", version), func(t *testing.T) {
			topic := fmt.Sprint("fs", version)
			createTopic(t, cl, topic, 3, nil)
			for p := range int32(3) {
				if code := rawProduce(t, cl, topic, p, batch(fmt.Sprint("first-", p))); code != 0 {
					t.Fatalf("produce: %v", kerr.ErrorForCode(code))
				}
			}
			var id [16]byte
			if version >= 13 {
				id = topicID(t, cl, topic)
			}
			full := sessionFetch(t, ta, version, topic, id, 0, 0, map[int32]int64{0: 0, 1: 0, 2: 0}, nil)
			if got := answered(t, full); len(got) != 3 || got[0] == 0 || got[1] == 0 || got[2] == 0 {
				t.Fatalf("full fetch answered %v, want records of all 3 partitions", got)
			}
			s := full.SessionID
			if s == 0 {
				t.Fatal("a full fetch at epoch 0 opened no session")
			}
			// The client consumed offset 0 everywhere: nothing new.
			if got := answered(t, sessionFetch(t, ta, version, topic, id, s, 1, map[int32]int64{0: 1, 1: 1, 2: 1}, nil)); len(got) != 0 {
				t.Fatalf("incremental fetch with nothing new answered %v", got)
			}
			if code := rawProduce(t, cl, topic, 1, batch("second-1")); code != 0 {
				t.Fatal(kerr.ErrorForCode(code))
			}
			// Names no partition; the session knows them and their offsets.
			got := answered(t, sessionFetch(t, ta, version, topic, id, s, 2, nil, nil))
			if len(got) != 1 || got[1] == 0 {
				t.Fatalf("incremental fetch after a produce to partition 1 answered %v, want partition 1 only", got)
			}
			// Partition 1 moves on; partition 2 is forgotten.
			if got := answered(t, sessionFetch(t, ta, version, topic, id, s, 3, map[int32]int64{1: 2}, []int32{2})); len(got) != 0 {
				t.Fatalf("incremental fetch answered %v, want nothing", got)
			}
			for _, p := range []int32{0, 2} {
				if code := rawProduce(t, cl, topic, p, batch("more")); code != 0 {
					t.Fatal(kerr.ErrorForCode(code))
				}
			}
			if got := answered(t, sessionFetch(t, ta, version, topic, id, s, 4, nil, nil)); len(got) != 1 || got[0] == 0 {
				t.Fatalf("after forgetting partition 2: answered %v, want partition 0 only", got)
			}
			for _, c := range []struct {
				name         string
				session      int32
				epoch        int32
				version      int16
				want         *kerr.Error
				forTopicIDOf int16
			}{
				{"an epoch already used", s, 4, version, kerr.InvalidFetchSessionEpoch, 0},
				{"an epoch ahead", s, 9, version, kerr.InvalidFetchSessionEpoch, 0},
				{"an unknown session", s + 1, 1, version, kerr.FetchSessionIDNotFound, 0},
				{"the other topic naming", s, 5, 25 - version, kerr.FetchSessionTopicIDError, 0},
			} {
				resp := sessionFetch(t, ta, c.version, topic, [16]byte{}, c.session, c.epoch, nil, nil)
				if resp.ErrorCode != c.want.Code {
					t.Errorf("%s: %v, want %v", c.name, kerr.ErrorForCode(resp.ErrorCode), c.want)
				}
			}
			// Epoch -1 closes the session.
			answered(t, sessionFetch(t, ta, version, topic, id, s, -1, map[int32]int64{0: 0}, nil))
			if resp := sessionFetch(t, ta, version, topic, id, s, 5, nil, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
				t.Fatalf("incremental fetch of a closed session: %v, want FETCH_SESSION_ID_NOT_FOUND", kerr.ErrorForCode(resp.ErrorCode))
			}
		})
	}
}

// A franz-go consumer of many partitions, which uses fetch sessions when
// the broker opens them, reads every record once and in order while the
// agent serves it incremental fetches.
func TestFetchSessionsManyPartitions(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, nil)
	cl := ta.client(t)
	const partitions, perPartition = 200, 3
	createTopic(t, cl, "wide", partitions, nil)
	prod := ta.client(t, kgo.DefaultProduceTopic("wide"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produceRound := func(round int) {
		var rs []*kgo.Record
		for p := range int32(partitions) {
			rs = append(rs, &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("%d-%d", p, round))})
		}
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produceRound(0)
	cons := ta.client(t, kgo.ConsumeTopics("wide"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	next := make(map[int32]int)
	read := 0
	for round := 1; read < partitions*perPartition; {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", read, partitions*perPartition, err)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("partition %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("%d-%d", r.Partition, next[r.Partition]); string(r.Value) != want {
				t.Fatalf("partition %d offset %d: %q, want %q", r.Partition, r.Offset, r.Value, want)
			}
			next[r.Partition]++
			read++
		})
		// The next round is produced once the consumer has caught up, so
		// it arrives through incremental fetches of the open session.
		if read == round*partitions && round < perPartition {
			produceRound(round)
			round++
		}
	}
	open, opened, incremental := ta.FetchSessions()
	if opened == 0 || incremental == 0 {
		t.Fatalf("sessions open %d, opened %d, incremental fetches %d: want the consumer on a session", open, opened, incremental)
	}
}

// The session cache is bounded: with every slot held by a session in use,
// a full fetch is answered in full without a session (id 0), so that
// client goes on with full fetches; closing a session frees its slot.
func TestFetchSessionCacheFull(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, func(c *agent.Config) { c.FetchSessionSlots = 1 })
	createTopic(t, ta.client(t), "full", 1, nil)
	first := sessionFetch(t, ta, 12, "full", [16]byte{}, 0, 0, map[int32]int64{0: 0}, nil)
	if first.SessionID == 0 {
		t.Fatal("no session opened with a free slot")
	}
	if second := sessionFetch(t, ta, 12, "full", [16]byte{}, 0, 0, map[int32]int64{0: 0}, nil); second.SessionID != 0 || second.ErrorCode != 0 {
		t.Fatalf("full fetch with no free slot: session %d, %v; want a sessionless answer", second.SessionID, kerr.ErrorForCode(second.ErrorCode))
	}
	answered(t, sessionFetch(t, ta, 12, "full", [16]byte{}, first.SessionID, -1, map[int32]int64{0: 0}, nil))
	if third := sessionFetch(t, ta, 12, "full", [16]byte{}, 0, 0, map[int32]int64{0: 0}, nil); third.SessionID == 0 {
		t.Fatal("no session opened after the only one was closed")
	}
}
