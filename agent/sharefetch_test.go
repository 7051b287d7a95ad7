package agent_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/segment"
)

// Share fetches (KIP-932) over TCP: ShareFetch and ShareAcknowledge as
// kmsg requests a franz-go client sends, one share session per member.

// shareFetcher is one member fetching one partition in a share session.
type shareFetcher struct {
	t       *testing.T
	cl      *kgo.Client
	group   string
	member  string
	topicID [16]byte
	epoch   int32
	acks    []kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch
}

// acquired is one record a fetch acquired.
type acquired struct {
	offset int64
	count  int16
}

func (f *shareFetcher) ack(offset int64, typ int8) {
	b := kmsg.NewShareFetchRequestTopicPartitionAcknowledgementBatch()
	b.FirstOffset, b.LastOffset, b.AcknowledgeTypes = offset, offset, []int8{typ}
	f.acks = append(f.acks, b)
}

// fetchRaw sends one ShareFetch carrying the pending acknowledgements.
func (f *shareFetcher) fetchRaw(maxRecords int32) *kmsg.ShareFetchResponse {
	f.t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID = &f.group, &f.member
	req.ShareSessionEpoch = f.epoch
	req.MaxWaitMillis, req.MaxBytes, req.MaxRecords, req.BatchSize = 200, 1<<20, maxRecords, maxRecords
	rt := kmsg.NewShareFetchRequestTopic()
	rt.TopicID = f.topicID
	rp := kmsg.NewShareFetchRequestTopicPartition()
	rp.Partition, rp.AcknowledgementBatches = 0, f.acks
	if f.epoch == 0 || len(f.acks) > 0 {
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(context.Background(), f.cl)
	if err != nil {
		f.t.Fatalf("share fetch: %v", err)
	}
	return resp
}

// fetch sends one ShareFetch and returns the records it acquired,
// checking that the returned batches hold every one of them.
func (f *shareFetcher) fetch(maxRecords int32) []acquired {
	f.t.Helper()
	resp := f.fetchRaw(maxRecords)
	if resp.ErrorCode != 0 {
		f.t.Fatalf("share fetch by %s: %v", f.member, kerr.ErrorForCode(resp.ErrorCode))
	}
	f.epoch++
	f.acks = nil
	var out []acquired
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 || p.AcknowledgeErrorCode != 0 {
				f.t.Fatalf("share fetch by %s: partition error %v, acknowledge error %v", f.member, kerr.ErrorForCode(p.ErrorCode), kerr.ErrorForCode(p.AcknowledgeErrorCode))
			}
			have := map[int64]bool{}
			for rest := p.Records; len(rest) > 0; {
				_, r, h, err := segment.NextBatch(rest)
				if err != nil {
					f.t.Fatalf("share fetch records: %v", err)
				}
				for o := h.BaseOffset; o < h.BaseOffset+h.OffsetCount(); o++ {
					have[o] = true
				}
				rest = r
			}
			for _, ar := range p.AcquiredRecords {
				for o := ar.FirstOffset; o <= ar.LastOffset; o++ {
					if !have[o] {
						f.t.Fatalf("offset %d acquired but not in the returned batches", o)
					}
					out = append(out, acquired{o, ar.DeliveryCount})
				}
			}
		}
	}
	return out
}

// shareAcknowledge sends a ShareAcknowledge of the pending
// acknowledgements and returns the partition's error code.
func (f *shareFetcher) acknowledge() int16 {
	f.t.Helper()
	req := kmsg.NewPtrShareAcknowledgeRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &f.group, &f.member, f.epoch
	rt := kmsg.NewShareAcknowledgeRequestTopic()
	rt.TopicID = f.topicID
	rp := kmsg.NewShareAcknowledgeRequestTopicPartition()
	for _, b := range f.acks {
		ab := kmsg.NewShareAcknowledgeRequestTopicPartitionAcknowledgementBatch()
		ab.FirstOffset, ab.LastOffset, ab.AcknowledgeTypes = b.FirstOffset, b.LastOffset, b.AcknowledgeTypes
		rp.AcknowledgementBatches = append(rp.AcknowledgementBatches, ab)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), f.cl)
	if err != nil {
		f.t.Fatalf("share acknowledge: %v", err)
	}
	f.acks = nil
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	f.epoch++
	return resp.Topics[0].Partitions[0].ErrorCode
}

func shareFetchOn(lock time.Duration, limit int) func(*agent.Config) {
	return func(c *agent.Config) {
		shareGroupsOn(c)
		c.ShareAutoOffsetReset = agent.ShareOffsetEarliest
		c.ShareRecordLockDuration = lock
		c.ShareDeliveryCountLimit = limit
	}
}

// shareTopic creates a one-partition topic with n records and returns
// its id.
func shareTopic(t *testing.T, cl *kgo.Client, name string, n int) [16]byte {
	t.Helper()
	createTopic(t, cl, name, 1, nil)
	produceN(t, cl, name, 1, n, "r-")
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(name)
	md.Topics = append(md.Topics, mt)
	resp, err := md.RequestWith(context.Background(), cl)
	if err != nil || len(resp.Topics) != 1 {
		t.Fatalf("metadata of %s: %v", name, err)
	}
	return resp.Topics[0].TopicID
}

// TestShareFetchTwoAgentsExactlyOnce: two members of one share group,
// each fetching through a different agent of a cluster on Postgres and
// MinIO, share one partition; accepting everything they get, together
// they receive every record exactly once, each at delivery count 1.
func TestShareFetchTwoAgentsExactlyOnce(t *testing.T) {
	t.Parallel()
	s := postgresMinIO.newStorage(t)
	var tas []*testAgent
	for i := range 2 {
		tas = append(tas, startAgentOn(t, s.openStore(t), s.bucket, func(c *agent.Config) {
			c.ID = fmt.Sprintf("agent-%d", i)
			shareFetchOn(time.Minute, 5)(c)
		}))
	}
	const n = 200
	id := shareTopic(t, tas[0].client(t), "sf2", n)
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	for i, ta := range tas {
		f := &shareFetcher{t: t, cl: ta.client(t), group: "sf2g", member: fmt.Sprintf("member-%d", i), topicID: id}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 * n {
				got := f.fetch(7)
				mu.Lock()
				for _, r := range got {
					if prev, ok := seen[r.offset]; ok || r.count != 1 {
						mu.Unlock()
						t.Errorf("offset %d delivered to %s (count %d), already to %q", r.offset, f.member, r.count, prev)
						return
					}
					seen[r.offset] = f.member
					f.ack(r.offset, 1) // accept, with the next fetch
				}
				done := len(seen) == n
				mu.Unlock()
				if done {
					f.fetchRaw(1) // deliver the last acknowledgements
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d of %d records delivered", len(seen), n)
	}
	by := map[string]int{}
	for _, m := range seen {
		by[m]++
	}
	t.Logf("records per member: %v", by)
}

// TestShareFetchReleaseRejectAndLimit: a released record comes back with
// delivery count 2; a rejected one never comes back; one released up to
// the delivery limit is archived; acknowledging a record the member does
// not hold is INVALID_RECORD_STATE.
func TestShareFetchReleaseRejectAndLimit(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, shareFetchOn(time.Minute, 2))
	cl := ta.client(t)
	id := shareTopic(t, cl, "srel", 3)
	a := &shareFetcher{t: t, cl: cl, group: "srelg", member: "member-a", topicID: id}
	b := &shareFetcher{t: t, cl: cl, group: "srelg", member: "member-b", topicID: id}
	got := a.fetch(3)
	if len(got) != 3 || got[0].count != 1 {
		t.Fatalf("first fetch: %+v, want offsets 0..2 at count 1", got)
	}
	b.fetch(3) // opens b's session; nothing is free
	b.ack(0, 1)
	if code := b.acknowledge(); code != kerr.InvalidRecordState.Code {
		t.Fatalf("b accepting a's record: %v, want INVALID_RECORD_STATE", kerr.ErrorForCode(code))
	}
	a.ack(0, 2) // release
	a.ack(1, 3) // reject
	a.ack(2, 2) // release
	if code := a.acknowledge(); code != 0 {
		t.Fatalf("a's acknowledgements: %v", kerr.ErrorForCode(code))
	}
	got = b.fetch(3)
	if len(got) != 2 || got[0] != (acquired{0, 2}) || got[1] != (acquired{2, 2}) {
		t.Fatalf("after a released 0 and 2 and rejected 1: b got %+v, want 0 and 2 at count 2", got)
	}
	// b accepts 0 and releases 2 again: at the limit (2) it is archived.
	b.ack(0, 1)
	b.ack(2, 2)
	if code := b.acknowledge(); code != 0 {
		t.Fatalf("b's acknowledgements: %v", kerr.ErrorForCode(code))
	}
	produceN(t, cl, "srel", 1, 1, "late-")
	got = a.fetch(10)
	if len(got) != 1 || got[0] != (acquired{3, 1}) {
		t.Fatalf("after everything was accepted, rejected or archived: %+v, want only the new record 3", got)
	}
}

// TestShareFetchLockExpiry: a member that dies holding records without
// acknowledging them loses them when the acquisition lock lapses; another
// member gets them at delivery count 2.
func TestShareFetchLockExpiry(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, shareFetchOn(300*time.Millisecond, 5))
	cl := ta.client(t)
	id := shareTopic(t, cl, "slock", 5)
	dead := &shareFetcher{t: t, cl: cl, group: "slockg", member: "member-dead", topicID: id}
	if got := dead.fetch(5); len(got) != 5 {
		t.Fatalf("first fetch: %+v", got)
	}
	live := &shareFetcher{t: t, cl: cl, group: "slockg", member: "member-live", topicID: id}
	var got []acquired
	poll.Until(t, "the dead member's records redelivered", func() bool {
		got = append(got, live.fetch(5)...)
		return len(got) >= 5
	})
	for i, r := range got {
		if r != (acquired{int64(i), 2}) {
			t.Fatalf("redelivered %+v, want offsets 0..4 at count 2", got)
		}
	}
}

// TestShareSessionErrors: the share session rules as Kafka answers them.
func TestShareSessionErrors(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, shareFetchOn(time.Minute, 5))
	cl := ta.client(t)
	id := shareTopic(t, cl, "ssess", 2)
	f := &shareFetcher{t: t, cl: cl, group: "ssessg", member: "member-s", topicID: id}
	f.epoch = 3
	if resp := f.fetchRaw(1); resp.ErrorCode != kerr.ShareSessionNotFound.Code {
		t.Fatalf("fetch in no session: %v, want SHARE_SESSION_NOT_FOUND", kerr.ErrorForCode(resp.ErrorCode))
	}
	f.epoch = 0
	f.ack(0, 1)
	if resp := f.fetchRaw(1); resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("acknowledgements opening a session: %v, want INVALID_REQUEST", kerr.ErrorForCode(resp.ErrorCode))
	}
	f.acks = nil
	got := f.fetch(1) // epoch 0 opens the session; the next is 1
	if len(got) != 1 {
		t.Fatalf("first fetch: %+v", got)
	}
	f.epoch = 5
	if resp := f.fetchRaw(1); resp.ErrorCode != kerr.InvalidShareSessionEpoch.Code {
		t.Fatalf("fetch at the wrong epoch: %v, want INVALID_SHARE_SESSION_EPOCH", kerr.ErrorForCode(resp.ErrorCode))
	}
	f.epoch = 0
	if code := f.acknowledge(); code != kerr.InvalidShareSessionEpoch.Code {
		t.Fatalf("ShareAcknowledge at epoch 0: %v, want INVALID_SHARE_SESSION_EPOCH", kerr.ErrorForCode(code))
	}
	// Closing the session (-1) releases what the member holds: another
	// member gets offset 0 at delivery count 2.
	f.epoch = 1
	f.fetch(1) // epoch 1: acquires offset 1
	f.epoch = -1
	if resp := f.fetchRaw(1); resp.ErrorCode != 0 {
		t.Fatalf("closing the session: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	g := &shareFetcher{t: t, cl: cl, group: "ssessg", member: "member-g", topicID: id}
	if got := g.fetch(5); len(got) != 2 || got[0] != (acquired{0, 2}) || got[1] != (acquired{1, 2}) {
		t.Fatalf("after the session closed: %+v, want 0 and 1 at count 2", got)
	}
}

// TestShareGroupOffsetsAdmin: DescribeShareGroupOffsets reports the
// share-partition start offset and lag; AlterShareGroupOffsets and
// DeleteShareGroupOffsets refuse a group with members and work on an
// empty one; a member leaving the group releases its records at once.
func TestShareGroupOffsetsAdmin(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, shareFetchOn(time.Minute, 5))
	cl := ta.client(t)
	ctx := context.Background()
	id := shareTopic(t, cl, "sadm", 5)
	m := &shareMember{cl: cl, group: "sadmg", id: "member-a", topics: []string{"sadm"}}
	if code := m.heartbeat(ctx); code != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(code))
	}
	f := &shareFetcher{t: t, cl: cl, group: "sadmg", member: m.id, topicID: id}
	if got := f.fetch(5); len(got) != 5 {
		t.Fatalf("fetch: %+v", got)
	}
	for o := range int64(3) {
		f.ack(o, 1)
	}
	if code := f.acknowledge(); code != 0 {
		t.Fatalf("accept 0..2: %v", kerr.ErrorForCode(code))
	}

	describe := func(group string) kmsg.DescribeShareGroupOffsetsResponseGroup {
		t.Helper()
		req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
		rg.GroupID = group
		rt := kmsg.NewDescribeShareGroupOffsetsRequestGroupTopic()
		rt.Topic, rt.Partitions = "sadm", []int32{0, 7}
		rg.Topics = append(rg.Topics, rt)
		req.Groups = append(req.Groups, rg)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Groups[0]
	}
	g := describe("sadmg")
	if g.ErrorCode != 0 || len(g.Topics) != 1 || g.Topics[0].TopicID != id {
		t.Fatalf("describe: %+v", g)
	}
	if p := g.Topics[0].Partitions[0]; p.StartOffset != 3 || p.Lag != 2 || p.ErrorCode != 0 {
		t.Fatalf("partition 0: start %d, lag %d, %v; want 3, 2", p.StartOffset, p.Lag, kerr.ErrorForCode(p.ErrorCode))
	}
	if p := g.Topics[0].Partitions[1]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("partition 7 of a one-partition topic: %v", kerr.ErrorForCode(p.ErrorCode))
	}

	alter := func(offset int64) int16 {
		t.Helper()
		req := kmsg.NewPtrAlterShareGroupOffsetsRequest()
		req.GroupID = "sadmg"
		rt := kmsg.NewAlterShareGroupOffsetsRequestTopic()
		rt.Topic = "sadm"
		rp := kmsg.NewAlterShareGroupOffsetsRequestTopicPartition()
		rp.Partition, rp.StartOffset = 0, offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != 0 {
			return resp.ErrorCode
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	deleteOffsets := func(group string, topics ...string) (int16, []int16) {
		t.Helper()
		req := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
		req.GroupID = group
		for _, name := range topics {
			rt := kmsg.NewDeleteShareGroupOffsetsRequestTopic()
			rt.Topic = name
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		var codes []int16
		for _, rt := range resp.Topics {
			codes = append(codes, rt.ErrorCode)
		}
		return resp.ErrorCode, codes
	}
	if code := alter(1); code != kerr.NonEmptyGroup.Code {
		t.Fatalf("alter with a member: %v, want NON_EMPTY_GROUP", kerr.ErrorForCode(code))
	}
	if code, _ := deleteOffsets("sadmg", "sadm"); code != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete with a member: %v, want NON_EMPTY_GROUP", kerr.ErrorForCode(code))
	}

	// The member leaves: the records it held (3, 4) go back at once.
	leave := kmsg.NewPtrShareGroupHeartbeatRequest()
	leave.GroupID, leave.MemberID, leave.MemberEpoch = "sadmg", m.id, -1
	if resp, err := leave.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("leave: %+v, %v", resp, err)
	}
	other := &shareFetcher{t: t, cl: cl, group: "sadmg", member: "member-b", topicID: id}
	if got := other.fetch(5); len(got) != 2 || got[0] != (acquired{3, 2}) {
		t.Fatalf("after the member left: %+v, want 3 and 4 at count 2", got)
	}

	if code := alter(1); code != 0 {
		t.Fatalf("alter an empty group: %v", kerr.ErrorForCode(code))
	}
	if p := describe("sadmg").Topics[0].Partitions[0]; p.StartOffset != 1 {
		t.Fatalf("after alter: start %d, want 1", p.StartOffset)
	}
	code, codes := deleteOffsets("sadmg", "sadm", "nope")
	if code != 0 || len(codes) != 2 || codes[0] != 0 || codes[1] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("delete: %v, %v", kerr.ErrorForCode(code), codes)
	}
	if p := describe("sadmg").Topics[0].Partitions[0]; p.StartOffset != -1 {
		t.Fatalf("after delete: start %d, want -1", p.StartOffset)
	}
	if code, _ := deleteOffsets("no-such-group", "sadm"); code != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete offsets of a missing group: %v, want GROUP_ID_NOT_FOUND", kerr.ErrorForCode(code))
	}
}

// TestShareSessionEndsWithConnection: a member whose connection closes
// (a crashed client) loses its records at once, as in Kafka 4.2, not
// after the acquisition lock (ten minutes here).
func TestShareSessionEndsWithConnection(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, shareFetchOn(10*time.Minute, 5))
	id := shareTopic(t, ta.client(t), "sconn", 4)
	crashing, err := kgo.NewClient(kgo.SeedBrokers(ta.addr))
	if err != nil {
		t.Fatal(err)
	}
	dead := &shareFetcher{t: t, cl: crashing, group: "sconng", member: "member-dead", topicID: id}
	if got := dead.fetch(4); len(got) != 4 {
		t.Fatalf("first fetch: %+v", got)
	}
	crashing.Close()
	live := &shareFetcher{t: t, cl: ta.client(t), group: "sconng", member: "member-live", topicID: id}
	var got []acquired
	poll.Until(t, "the closed connection's records redelivered", func() bool {
		got = append(got, live.fetch(4)...)
		return len(got) >= 4
	})
	for i, r := range got {
		if r != (acquired{int64(i), 2}) {
			t.Fatalf("redelivered %+v, want offsets 0..3 at count 2", got)
		}
	}
}

// TestShareGroupConfigs: share settings per group through the GROUP
// config resource, as franz-go's share tests set them: the agent's
// default is latest, a group set to earliest reads what was produced
// before it started, and its lock duration is what ShareFetch reports.
// Unknown keys and bad values are INVALID_CONFIG.
func TestShareGroupConfigs(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, shareGroupsOn) // share.auto.offset.reset: latest
	cl := ta.client(t)
	ctx := context.Background()
	id := shareTopic(t, cl, "sgc", 3)
	alter := func(group string, kvs ...string) int16 {
		t.Helper()
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
		for i := 0; i < len(kvs); i += 2 {
			c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			c.Name, c.Value = kvs[i], kmsg.StringPtr(kvs[i+1])
			res.Configs = append(res.Configs, c)
		}
		req.Resources = append(req.Resources, res)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Resources[0].ErrorCode
	}
	if code := alter("sgcg", "consumer.session.timeout.ms", "50000"); code != kerr.InvalidConfig.Code {
		t.Fatalf("an unsupported group config: %v, want INVALID_CONFIG", kerr.ErrorForCode(code))
	}
	if code := alter("sgcg", "share.auto.offset.reset", "sometime"); code != kerr.InvalidConfig.Code {
		t.Fatalf("a bad value: %v, want INVALID_CONFIG", kerr.ErrorForCode(code))
	}
	if code := alter("sgcg", "share.auto.offset.reset", "earliest", "share.record.lock.duration.ms", "15000"); code != 0 {
		t.Fatalf("set group configs: %v", kerr.ErrorForCode(code))
	}
	dreq := kmsg.NewPtrDescribeConfigsRequest()
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "sgcg"
	dreq.Resources = append(dreq.Resources, dr)
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil || dresp.Resources[0].ErrorCode != 0 {
		t.Fatalf("describe group configs: %+v, %v", dresp, err)
	}
	got := map[string]string{}
	for _, c := range dresp.Resources[0].Configs {
		got[c.Name] = fmt.Sprintf("%s/%v", *c.Value, c.Source)
	}
	if got["share.auto.offset.reset"] != "earliest/GROUP_CONFIG" || got["share.delivery.count.limit"] != "5/DEFAULT_CONFIG" {
		t.Fatalf("described: %v", got)
	}

	f := &shareFetcher{t: t, cl: cl, group: "sgcg", member: "member-c", topicID: id}
	resp := f.fetchRaw(10)
	if resp.ErrorCode != 0 || resp.AcquisitionLockTimeoutMillis != 15000 {
		t.Fatalf("fetch: %v, lock %d ms; want the group's 15000", kerr.ErrorForCode(resp.ErrorCode), resp.AcquisitionLockTimeoutMillis)
	}
	n := 0
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			for _, ar := range rp.AcquiredRecords {
				n += int(ar.LastOffset - ar.FirstOffset + 1)
			}
		}
	}
	if n != 3 {
		t.Fatalf("a group reset to earliest got %d of the 3 earlier records", n)
	}
	// Another group, on the agent's default (latest), gets none of them.
	g := &shareFetcher{t: t, cl: cl, group: "sgcg-latest", member: "member-d", topicID: id}
	if got := g.fetch(10); len(got) != 0 {
		t.Fatalf("a group at latest got %+v", got)
	}
}

// TestShareSessionLimit: with group.share.max.share.sessions at 1, a
// second member's session is SHARE_SESSION_LIMIT_REACHED until the first
// closes its own.
func TestShareSessionLimit(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, func(c *agent.Config) {
		shareFetchOn(time.Minute, 5)(c)
		c.ShareSessionSlots = 1
	})
	cl := ta.client(t)
	id := shareTopic(t, cl, "slim", 1)
	a := &shareFetcher{t: t, cl: cl, group: "slimg", member: "member-a", topicID: id}
	b := &shareFetcher{t: t, cl: cl, group: "slimg", member: "member-b", topicID: id}
	a.fetch(1)
	if resp := b.fetchRaw(1); resp.ErrorCode != kerr.ShareSessionLimitReached.Code {
		t.Fatalf("a second session with one slot: %v, want SHARE_SESSION_LIMIT_REACHED", kerr.ErrorForCode(resp.ErrorCode))
	}
	a.epoch = -1
	if resp := a.fetchRaw(1); resp.ErrorCode != 0 {
		t.Fatalf("close a's session: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if got := b.fetch(1); len(got) != 1 || got[0] != (acquired{0, 2}) {
		t.Fatalf("b after a closed its session: %+v, want offset 0 at count 2", got)
	}
}

// TestShareSessionAddsBeforeForgetting: a ShareFetch that names a partition
// only to carry its acknowledgements also lists it in ForgottenTopicsData
// (franz-go does, for a partition it no longer fetches here). As in Kafka,
// the session adds the request's partitions, then forgets the forgotten
// ones, so the partition leaves the session: the fetch acquires nothing
// for it, now or later. Forgetting first left it in the session, and every
// later fetch acquired records the client threw away ("partition we did
// not ask for") until their delivery count ran out and they were archived
// undelivered.
func TestShareSessionAddsBeforeForgetting(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, shareFetchOn(time.Minute, 5))
	cl := ta.client(t)
	id := shareTopic(t, cl, "sforget", 3)
	f := &shareFetcher{t: t, cl: cl, group: "sforgetg", member: "member-f", topicID: id}
	if got := f.fetch(1); len(got) != 1 || got[0] != (acquired{0, 1}) {
		t.Fatalf("first fetch: %+v", got)
	}
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID = &f.group, &f.member
	req.ShareSessionEpoch = f.epoch
	req.MaxWaitMillis, req.MaxBytes, req.MaxRecords, req.BatchSize = 0, 1<<20, 10, 10
	rt := kmsg.NewShareFetchRequestTopic()
	rt.TopicID = id
	rp := kmsg.NewShareFetchRequestTopicPartition()
	ab := kmsg.NewShareFetchRequestTopicPartitionAcknowledgementBatch()
	ab.FirstOffset, ab.LastOffset, ab.AcknowledgeTypes = 0, 0, []int8{1} // accept
	rp.AcknowledgementBatches = append(rp.AcknowledgementBatches, ab)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ft := kmsg.NewShareFetchRequestForgottenTopicsData()
	ft.TopicID, ft.Partitions = id, []int32{0}
	req.ForgottenTopicsData = append(req.ForgottenTopicsData, ft)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("acknowledge and forget: %v %v", err, kerr.ErrorForCode(resp.ErrorCode))
	}
	f.epoch++
	for _, t2 := range resp.Topics {
		for _, p := range t2.Partitions {
			if p.AcknowledgeErrorCode != 0 {
				t.Fatalf("acknowledgement: %v", kerr.ErrorForCode(p.AcknowledgeErrorCode))
			}
			if len(p.AcquiredRecords) > 0 {
				t.Fatalf("the fetch that forgot partition 0 acquired %+v there", p.AcquiredRecords)
			}
		}
	}
	f.acks = nil
	if got := f.fetch(10); len(got) != 0 {
		t.Fatalf("a fetch after partition 0 left the session acquired %+v there", got)
	}
	g := &shareFetcher{t: t, cl: cl, group: "sforgetg", member: "member-g", topicID: id}
	if got := g.fetch(10); len(got) != 2 || got[0] != (acquired{1, 1}) || got[1] != (acquired{2, 1}) {
		t.Fatalf("another member got %+v, want offsets 1 and 2 at delivery count 1", got)
	}
}
