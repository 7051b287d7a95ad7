package agent_test

import (
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafka39Versions is what Apache Kafka 3.9 accepts for each API key Silt
// serves (validVersions in clients/src/main/resources/common/message/*.json
// at the 3.9 branch).
var kafka39Versions = map[int16][2]int16{
	0: {0, 11}, 1: {0, 17}, 2: {0, 9}, 3: {0, 12},
	8: {0, 9}, 9: {0, 9}, 10: {0, 6}, 11: {0, 9}, 12: {0, 4}, 13: {0, 5},
	14: {0, 5}, 15: {0, 5}, 16: {0, 5}, 18: {0, 4}, 19: {0, 7}, 20: {0, 6},
	22: {0, 5}, 23: {0, 4}, 24: {0, 5}, 25: {0, 4}, 26: {0, 4}, 28: {0, 4},
	29: {0, 3}, 30: {0, 3}, 31: {0, 3}, 32: {0, 4}, 33: {0, 2}, 37: {0, 3},
	42: {0, 2}, 44: {0, 1}, 47: {0, 0}, 50: {0, 0}, 51: {0, 0}, 60: {0, 1},
	61: {0, 0}, 65: {0, 0}, 66: {0, 1},
	35: {0, 4}, 43: {0, 2}, 45: {0, 0}, 46: {0, 0}, 57: {0, 1}, 71: {0, 0},
	72: {0, 0}, 75: {0, 0},
}

// TestVersionsCoverKafka39: for every key Silt advertises that Kafka 3.9
// knows, Silt accepts at least Kafka 3.9's versions, so a client that works
// with Kafka 3.9 is never closed on for its version.
func TestVersionsCoverKafka39(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, nil)
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(0)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	rawRequest(t, ta.addr, req, resp)
	if resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions v0: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	for _, k := range resp.ApiKeys {
		want, ok := kafka39Versions[k.ApiKey]
		if !ok {
			continue // not in Kafka 3.9 (or added here after this table)
		}
		if k.MinVersion > want[0] || k.MaxVersion < want[1] {
			t.Errorf("%s: Silt accepts v%d–v%d, Kafka 3.9 v%d–v%d", kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion, want[0], want[1])
		}
	}
}

// TestOldRequestVersions sends each API at the versions Kafka 3.9 accepts
// below what Silt used to accept, over TCP, and checks the answers.
func TestOldRequestVersions(t *testing.T) {
	forEachBackend(t, testOldRequestVersions)
}

func testOldRequestVersions(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t)
	createTopic(t, cl, "old", 1, nil)

	// Produce v0–v2 take a v2 batch (as Kafka does); a message set of
	// format v1 is answered UNSUPPORTED_FOR_MESSAGE_FORMAT, not a close.
	for v := int16(0); v <= 2; v++ {
		for _, tc := range []struct {
			records []byte
			code    int16
		}{
			{batch("a", "b"), 0},
			{messageSetV1("old"), kerr.UnsupportedForMessageFormat.Code},
		} {
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(v)
			req.Acks, req.TimeoutMillis = -1, 10000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = "old"
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = tc.records
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp := kmsg.NewPtrProduceResponse()
			resp.SetVersion(v)
			rawRequest(t, ta.addr, req, resp)
			got := resp.Topics[0].Partitions[0]
			if got.ErrorCode != tc.code {
				t.Fatalf("produce v%d: %v, want %v", v, kerr.ErrorForCode(got.ErrorCode), kerr.ErrorForCode(tc.code))
			}
			if tc.code == 0 && got.BaseOffset != int64(2*v) {
				t.Fatalf("produce v%d: base offset %d, want %d", v, got.BaseOffset, 2*v)
			}
		}
	}
	const end = 6 // three produces of two records

	// Metadata v0: an empty list is every topic; a named topic is described.
	for _, topics := range [][]string{nil, {"old"}} {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(0)
		for _, n := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(n)
			req.Topics = append(req.Topics, rt)
		}
		resp := kmsg.NewPtrMetadataResponse()
		resp.SetVersion(0)
		rawRequest(t, ta.addr, req, resp)
		// Every topic includes the internal ones (v0 has no IsInternal).
		var user []kmsg.MetadataResponseTopic
		for _, rt := range resp.Topics {
			if !strings.HasPrefix(*rt.Topic, "__") {
				user = append(user, rt)
			}
		}
		if len(resp.Brokers) != 1 || len(user) != 1 || *user[0].Topic != "old" ||
			user[0].ErrorCode != 0 || len(user[0].Partitions) != 1 {
			t.Fatalf("metadata v0 for %v: %d brokers, topics %v", topics, len(resp.Brokers), user)
		}
	}

	// ListOffsets v0: offsets newest first, at most MaxNumOffsets.
	for _, tc := range []struct {
		ts     int64
		maxNum int32
		want   []int64
	}{
		{-1, 1, []int64{end}},
		{-1, 10, []int64{end, 0}},
		{-2, 10, []int64{0}},
		{-1, 0, nil},
		{time.Now().Add(time.Hour).UnixMilli(), 1, []int64{end}},
		{0, 1, []int64{0}},
	} {
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(0)
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "old"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp, rp.MaxNumOffsets = tc.ts, tc.maxNum
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := kmsg.NewPtrListOffsetsResponse()
		resp.SetVersion(0)
		rawRequest(t, ta.addr, req, resp)
		got := resp.Topics[0].Partitions[0]
		if got.ErrorCode != 0 || !equalInt64s(got.OldStyleOffsets, tc.want) {
			t.Fatalf("list offsets v0 (ts %d, max %d): %v %v, want %v", tc.ts, tc.maxNum, kerr.ErrorForCode(got.ErrorCode), got.OldStyleOffsets, tc.want)
		}
	}

	// ListOffsets v9: earliest local is the log start, latest tiered -1.
	for ts, want := range map[int64]int64{-4: 0, -5: -1, -1: end} {
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(9)
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "old"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = ts
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := kmsg.NewPtrListOffsetsResponse()
		resp.SetVersion(9)
		rawRequest(t, ta.addr, req, resp)
		if got := resp.Topics[0].Partitions[0]; got.ErrorCode != 0 || got.Offset != want {
			t.Fatalf("list offsets v9 ts %d: %v offset %d, want %d", ts, kerr.ErrorForCode(got.ErrorCode), got.Offset, want)
		}
	}

	// Fetch v0–v3 would need the records down-converted: each partition
	// answers UNSUPPORTED_VERSION, at once (MaxWait is longer than
	// rawRequest's deadline). Fetch v17 reads the records.
	for _, v := range []int16{0, 1, 2, 3, 17} {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(v)
		req.ReplicaID = -1
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 60000, 1<<20, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "old"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		if v == 17 {
			req.MaxWaitMillis, req.MinBytes = 0, 0
			rt := kmsg.NewFetchRequestTopic()
			rt.TopicID = topicID(t, cl, "old")
			rt.Partitions = req.Topics[0].Partitions
			req.Topics[0] = rt
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(v)
		rawRequest(t, ta.addr, req, resp)
		got := resp.Topics[0].Partitions[0]
		if v < 4 {
			if got.ErrorCode != kerr.UnsupportedVersion.Code || len(got.RecordBatches) != 0 {
				t.Fatalf("fetch v%d: %v with %d bytes, want UNSUPPORTED_VERSION", v, kerr.ErrorForCode(got.ErrorCode), len(got.RecordBatches))
			}
			continue
		}
		if got.ErrorCode != 0 || got.HighWatermark != end || len(got.RecordBatches) == 0 {
			t.Fatalf("fetch v%d: %v hw %d, %d bytes", v, kerr.ErrorForCode(got.ErrorCode), got.HighWatermark, len(got.RecordBatches))
		}
	}

	// OffsetForLeaderEpoch v0–v1: the end offset of epoch 0.
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.SetVersion(v)
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "old"
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.LeaderEpoch = 0
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := kmsg.NewPtrOffsetForLeaderEpochResponse()
		resp.SetVersion(v)
		rawRequest(t, ta.addr, req, resp)
		if got := resp.Topics[0].Partitions[0]; got.ErrorCode != 0 || got.EndOffset != end {
			t.Fatalf("offset for leader epoch v%d: %v end %d", v, kerr.ErrorForCode(got.ErrorCode), got.EndOffset)
		}
	}

	// DescribeConfigs v0 reports defaults with IsDefault.
	{
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.SetVersion(0)
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "old"
		r.ConfigNames = []string{"cleanup.policy"}
		req.Resources = append(req.Resources, r)
		resp := kmsg.NewPtrDescribeConfigsResponse()
		resp.SetVersion(0)
		rawRequest(t, ta.addr, req, resp)
		got := resp.Resources[0]
		if got.ErrorCode != 0 || len(got.Configs) != 1 || !got.Configs[0].IsDefault || *got.Configs[0].Value != "delete" {
			t.Fatalf("describe configs v0: %+v", got)
		}
	}

	// CreateTopics v0 and v1 (v1 with validate only), DeleteTopics v0.
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.SetVersion(v)
		req.TimeoutMillis = 10000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "created-v0", 2, 1
		req.Topics = append(req.Topics, rt)
		req.ValidateOnly = v == 1
		resp := kmsg.NewPtrCreateTopicsResponse()
		resp.SetVersion(v)
		rawRequest(t, ta.addr, req, resp)
		want := int16(0)
		if v == 1 {
			want = kerr.TopicAlreadyExists.Code
		}
		if got := resp.Topics[0].ErrorCode; got != want {
			t.Fatalf("create topics v%d: %v, want %v", v, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
		}
	}
	{
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.SetVersion(0)
		req.TimeoutMillis = 10000
		req.TopicNames = []string{"created-v0"}
		resp := kmsg.NewPtrDeleteTopicsResponse()
		resp.SetVersion(0)
		rawRequest(t, ta.addr, req, resp)
		if got := resp.Topics[0]; got.ErrorCode != 0 || *got.Topic != "created-v0" {
			t.Fatalf("delete topics v0: %v", kerr.ErrorForCode(got.ErrorCode))
		}
	}
}

// messageSetV1 is a message set of one message of format v1 (magic 1),
// what Kafka clients before 0.11 produce.
func messageSetV1(value string) []byte {
	m := kmsg.MessageV1{Magic: 1, Timestamp: time.Now().UnixMilli(), Value: []byte(value)}
	raw := m.AppendTo(nil)
	m.MessageSize = int32(len(raw) - 12)
	raw = m.AppendTo(nil)
	m.CRC = int32(crc32.ChecksumIEEE(raw[16:])) // from magic to the end
	return m.AppendTo(nil)
}

func equalInt64s(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestOldGroupVersions: a consumer group driven at v0 of every group API,
// as clients from before Kafka 0.10.1 (and kafka-python's fallbacks) do:
// FindCoordinator, JoinGroup, SyncGroup, Heartbeat, OffsetCommit (v0 and
// v1), OffsetFetch and LeaveGroup.
func TestOldGroupVersions(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, nil)
	createTopic(t, ta.client(t), "old-group", 1, nil)
	const group = "g0"

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.SetVersion(0)
	fc.CoordinatorKey = group
	fcr := kmsg.NewPtrFindCoordinatorResponse()
	fcr.SetVersion(0)
	rawRequest(t, ta.addr, fc, fcr)
	if fcr.ErrorCode != 0 || fcr.Host == "" || fcr.Port == 0 {
		t.Fatalf("FindCoordinator v0: %+v", fcr)
	}

	join := kmsg.NewPtrJoinGroupRequest()
	join.SetVersion(0)
	join.Group, join.SessionTimeoutMillis, join.ProtocolType = group, 30000, "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", []byte{0, 0, 0, 0, 0, 1, 0, 9, 'o', 'l', 'd', '-', 'g', 'r', 'o', 'u', 'p', 0, 0, 0, 0}
	join.Protocols = append(join.Protocols, p)
	jr := kmsg.NewPtrJoinGroupResponse()
	jr.SetVersion(0)
	rawRequest(t, ta.addr, join, jr)
	if jr.ErrorCode != 0 || jr.MemberID == "" || jr.LeaderID != jr.MemberID || len(jr.Members) != 1 {
		t.Fatalf("JoinGroup v0: %+v", jr)
	}

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.SetVersion(0)
	sync.Group, sync.Generation, sync.MemberID = group, jr.Generation, jr.MemberID
	ga := kmsg.NewSyncGroupRequestGroupAssignment()
	ga.MemberID, ga.MemberAssignment = jr.MemberID, []byte{0, 0, 0, 0, 0, 0, 0, 0}
	sync.GroupAssignment = append(sync.GroupAssignment, ga)
	sr := kmsg.NewPtrSyncGroupResponse()
	sr.SetVersion(0)
	rawRequest(t, ta.addr, sync, sr)
	if sr.ErrorCode != 0 {
		t.Fatalf("SyncGroup v0: %v", kerr.ErrorForCode(sr.ErrorCode))
	}

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.SetVersion(0)
	hb.Group, hb.Generation, hb.MemberID = group, jr.Generation, jr.MemberID
	hr := kmsg.NewPtrHeartbeatResponse()
	hr.SetVersion(0)
	rawRequest(t, ta.addr, hb, hr)
	if hr.ErrorCode != 0 {
		t.Fatalf("Heartbeat v0: %v", kerr.ErrorForCode(hr.ErrorCode))
	}

	// commit commits offset at v: v1 as the member, v0 (which has no
	// member fields) only once the group is empty, as Kafka requires; and
	// reads it back with OffsetFetch v0.
	commit := func(v int16, offset int64) {
		t.Helper()
		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.SetVersion(v)
		oc.Group, oc.Generation, oc.MemberID = group, jr.Generation, jr.MemberID
		ot := kmsg.NewOffsetCommitRequestTopic()
		ot.Topic = "old-group"
		op := kmsg.NewOffsetCommitRequestTopicPartition()
		op.Offset, op.Timestamp = offset, -1
		ot.Partitions = append(ot.Partitions, op)
		oc.Topics = append(oc.Topics, ot)
		ocr := kmsg.NewPtrOffsetCommitResponse()
		ocr.SetVersion(v)
		rawRequest(t, ta.addr, oc, ocr)
		if code := ocr.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("OffsetCommit v%d: %v", v, kerr.ErrorForCode(code))
		}
		of := kmsg.NewPtrOffsetFetchRequest()
		of.SetVersion(0)
		of.Group = group
		oft := kmsg.NewOffsetFetchRequestTopic()
		oft.Topic, oft.Partitions = "old-group", []int32{0}
		of.Topics = append(of.Topics, oft)
		ofr := kmsg.NewPtrOffsetFetchResponse()
		ofr.SetVersion(0)
		rawRequest(t, ta.addr, of, ofr)
		if got := ofr.Topics[0].Partitions[0]; got.ErrorCode != 0 || got.Offset != offset {
			t.Fatalf("OffsetFetch v0 after OffsetCommit v%d: %v offset %d, want %d", v, kerr.ErrorForCode(got.ErrorCode), got.Offset, offset)
		}
	}
	commit(1, 7)

	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.SetVersion(0)
	leave.Group, leave.MemberID = group, jr.MemberID
	lr := kmsg.NewPtrLeaveGroupResponse()
	lr.SetVersion(0)
	rawRequest(t, ta.addr, leave, lr)
	if lr.ErrorCode != 0 {
		t.Fatalf("LeaveGroup v0: %v", kerr.ErrorForCode(lr.ErrorCode))
	}
	commit(0, 5)
}
