package agent_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/wire"
)

// Until SASL lands, tests pick their principal through the client id: a
// connection whose client id is "user:alice" acts as User:alice. The
// mapping lives here, in the tests, through the agent's principal builder
// hook; no default maps client ids to principals.
func principalFromClientID(c *wire.Conn) string {
	if name, ok := strings.CutPrefix(c.ClientID(), "user:"); ok && name != "" {
		return "User:" + name
	}
	return wire.AnonymousPrincipal
}

// withACLs turns the ACL authorizer on with User:admin as super user.
func withACLs(more func(*agent.Config)) func(*agent.Config) {
	return func(c *agent.Config) {
		c.Authorizer = agent.AuthorizerACL
		c.SuperUsers = []string{"User:admin"}
		c.PrincipalBuilder = principalFromClientID
		if more != nil {
			more(c)
		}
	}
}

// as returns a client of ta acting as user.
func (ta *testAgent) as(t *testing.T, user string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return ta.client(t, append([]kgo.Opt{kgo.ClientID("user:" + user)}, opts...)...)
}

// acl is a binding in the tests' shorthand.
type acl struct {
	rt      kmsg.ACLResourceType
	name    string
	pattern kmsg.ACLResourcePatternType
	user    string // principal "User:"+user
	op      kmsg.ACLOperation
	deny    bool
	host    string // "" is "*"
}

func allow(rt kmsg.ACLResourceType, name, user string, op kmsg.ACLOperation) acl {
	return acl{rt: rt, name: name, pattern: kmsg.ACLResourcePatternTypeLiteral, user: user, op: op}
}

const (
	rtTopic   = kmsg.ACLResourceTypeTopic
	rtGroup   = kmsg.ACLResourceTypeGroup
	rtCluster = kmsg.ACLResourceTypeCluster
	rtTxn     = kmsg.ACLResourceTypeTransactionalId
)

// requester is a client, or one broker of a client (cl.SeedBrokers()[0])
// to send requests to one agent only.
type requester interface {
	Request(context.Context, kmsg.Request) (kmsg.Response, error)
}

// createACLs creates bindings through cl (which must be allowed to).
func createACLs(t *testing.T, cl requester, acls ...acl) {
	t.Helper()
	req := kmsg.NewPtrCreateACLsRequest()
	for _, a := range acls {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = a.rt, a.name, a.pattern
		c.Principal, c.Host, c.Operation = "User:"+a.user, "*", a.op
		if a.host != "" {
			c.Host = a.host
		}
		c.PermissionType = kmsg.ACLPermissionTypeAllow
		if a.deny {
			c.PermissionType = kmsg.ACLPermissionTypeDeny
		}
		req.Creations = append(req.Creations, c)
	}
	resp := request(t, cl, req).(*kmsg.CreateACLsResponse)
	for i, r := range resp.Results {
		if r.ErrorCode != 0 {
			t.Fatalf("create acl %+v: %v", acls[i], kerr.ErrorForCode(r.ErrorCode))
		}
	}
}

// request sends req to one agent: a client's first seed broker, so kgo
// does not route it (a coordinator or partition lookup would fail first).
func request(t *testing.T, cl requester, req kmsg.Request) kmsg.Response {
	t.Helper()
	if c, ok := cl.(*kgo.Client); ok {
		cl = c.SeedBrokers()[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := cl.Request(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var w int16
	if want != nil {
		w = want.Code
	}
	if got != w {
		t.Errorf("%s: got %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(w))
	}
}

// TestACLTopicAPIs: produce, fetch, list offsets, offsets for leader epoch,
// metadata (listing, hiding, auto-creation), create/delete topics, create
// partitions and configs, each denied with Kafka's code and no effect, then
// allowed by the ACL it needs.
func TestACLTopicAPIs(t *testing.T) {
	forEachBackend(t, testACLTopicAPIs)
}

func testACLTopicAPIs(t *testing.T, bk backend) {
	ta := startAgent(t, bk, withACLs(nil))
	admin := ta.as(t, "admin")
	alice := ta.as(t, "alice")
	createTopic(t, admin, "t-produce", 1, nil)
	createTopic(t, admin, "t-read", 1, nil)
	produceN(t, admin, "t-read", 1, 3, "r")
	readID := topicID(t, admin, "t-read")

	// Produce: WRITE on the topic; a missing topic is not revealed.
	wantCode(t, "produce without WRITE", rawProduce(t, alice, "t-produce", 0, batch("x")), kerr.TopicAuthorizationFailed)
	wantCode(t, "produce to a missing topic without WRITE", rawProduce(t, alice, "t-missing", 0, batch("x")), kerr.TopicAuthorizationFailed)
	if ends := listEnds(t, admin, "t-produce"); ends[0] != 0 {
		t.Fatalf("denied produce stored records: end offset %d", ends[0])
	}
	createACLs(t, admin, allow(rtTopic, "t-produce", "alice", kmsg.ACLOperationWrite))
	wantCode(t, "produce with WRITE", rawProduce(t, alice, "t-produce", 0, batch("x")), nil)

	// Fetch: READ. ListOffsets and OffsetForLeaderEpoch: DESCRIBE.
	fetch := func(cl *kgo.Client) int16 {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, 1<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "t-read", readID // by id from v13
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return request(t, cl, req).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode
	}
	listOffsets := func(cl *kgo.Client) int16 {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "t-read"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return request(t, cl, req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode
	}
	leaderEpoch := func(cl *kgo.Client) int16 {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "t-read"
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.LeaderEpoch = -1, 0
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return request(t, cl, req).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0].ErrorCode
	}
	wantCode(t, "fetch without READ", fetch(alice), kerr.TopicAuthorizationFailed)
	wantCode(t, "list offsets without DESCRIBE", listOffsets(alice), kerr.TopicAuthorizationFailed)
	wantCode(t, "offset for leader epoch without DESCRIBE", leaderEpoch(alice), kerr.TopicAuthorizationFailed)
	createACLs(t, admin, allow(rtTopic, "t-read", "alice", kmsg.ACLOperationRead))
	wantCode(t, "fetch with READ", fetch(alice), nil)
	wantCode(t, "list offsets with READ (implies DESCRIBE)", listOffsets(alice), nil)
	wantCode(t, "offset for leader epoch with READ", leaderEpoch(alice), nil)

	// Metadata: all topics lists only what alice may describe; a named
	// topic she may not describe fails whether or not it exists.
	metaReq := func(cl *kgo.Client, autoCreate bool, names ...string) *kmsg.MetadataResponse {
		req := kmsg.NewPtrMetadataRequest()
		req.AllowAutoTopicCreation = autoCreate
		if names != nil {
			for _, n := range names {
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr(n)
				req.Topics = append(req.Topics, rt)
			}
		}
		return request(t, cl, req).(*kmsg.MetadataResponse)
	}
	var listed []string
	for _, mt := range metaReq(alice, false).Topics {
		listed = append(listed, *mt.Topic)
	}
	if strings.Join(listed, ",") != "t-produce,t-read" && strings.Join(listed, ",") != "t-read,t-produce" {
		t.Errorf("metadata of all topics lists %v to alice; want only t-produce and t-read", listed)
	}
	// Authorized operations (KIP-430): READ on t-read also allows DESCRIBE.
	opsReq := kmsg.NewPtrMetadataRequest()
	opsReq.IncludeTopicAuthorizedOperations = true
	opsReq.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("t-read")}}
	want := int32(1<<kmsg.ACLOperationRead | 1<<kmsg.ACLOperationDescribe)
	if ops := request(t, alice, opsReq).(*kmsg.MetadataResponse).Topics[0].AuthorizedOperations; ops != want {
		t.Errorf("metadata authorized operations of t-read for alice: %b, want %b", ops, want)
	}
	createTopic(t, admin, "t-secret", 1, nil)
	for _, name := range []string{"t-secret", "t-nonexistent"} {
		mt := metaReq(alice, false, name).Topics[0]
		wantCode(t, "metadata of "+name+" without DESCRIBE", mt.ErrorCode, kerr.TopicAuthorizationFailed)
		if len(mt.Partitions) != 0 {
			t.Errorf("metadata of %s without DESCRIBE shows partitions", name)
		}
	}
	// Auto-creation needs CREATE besides DESCRIBE.
	createACLs(t, admin, allow(rtTopic, "t-auto", "alice", kmsg.ACLOperationDescribe))
	wantCode(t, "auto-create without CREATE", metaReq(alice, true, "t-auto").Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
	wantCode(t, "t-auto after a denied auto-create", metaReq(admin, false, "t-auto").Topics[0].ErrorCode, kerr.UnknownTopicOrPartition)
	createACLs(t, admin, allow(rtTopic, "t-auto", "alice", kmsg.ACLOperationCreate))
	// The request that creates the topic is answered as Kafka answers it.
	wantCode(t, "auto-create with CREATE", metaReq(alice, true, "t-auto").Topics[0].ErrorCode, kerr.LeaderNotAvailable)
	wantCode(t, "t-auto after the auto-create", metaReq(alice, true, "t-auto").Topics[0].ErrorCode, nil)

	// CreateTopics: CREATE on the topic or the cluster.
	adm := kadm.NewClient(alice)
	ctx := context.Background()
	if cr, _ := adm.CreateTopic(ctx, 1, 1, nil, "t-new"); cr.Err != kerr.TopicAuthorizationFailed {
		t.Errorf("create topic without CREATE: %v; want TOPIC_AUTHORIZATION_FAILED", cr.Err)
	}
	wantCode(t, "t-new after a denied create", metaReq(admin, false, "t-new").Topics[0].ErrorCode, kerr.UnknownTopicOrPartition)
	createACLs(t, admin, allow(rtCluster, "kafka-cluster", "alice", kmsg.ACLOperationCreate))
	if cr, err := adm.CreateTopic(ctx, 2, 1, nil, "t-new"); err != nil || cr.Err != nil {
		t.Fatalf("create topic with CREATE on the cluster: %v %v", err, cr.Err)
	}

	// CreatePartitions: ALTER.
	createPartitions := func() int16 {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.TimeoutMillis = 5000
		req.Topics = append(req.Topics, kmsg.CreatePartitionsRequestTopic{Topic: "t-new", Count: 3})
		return request(t, alice, req).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode
	}
	wantCode(t, "create partitions without ALTER", createPartitions(), kerr.TopicAuthorizationFailed)
	if n := partitionCount(t, kadm.NewClient(admin), "t-new"); n != 2 {
		t.Fatalf("denied create partitions changed the count to %d", n)
	}
	createACLs(t, admin, allow(rtTopic, "t-new", "alice", kmsg.ACLOperationAlter))
	wantCode(t, "create partitions with ALTER", createPartitions(), nil)

	// Configs: DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic; broker
	// configs need them on the cluster.
	// kadm returns the only resource's error as its error.
	if _, err := adm.DescribeTopicConfigs(ctx, "t-new"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("describe configs without DESCRIBE_CONFIGS: %v", err)
	}
	if _, err := adm.DescribeBrokerConfigs(ctx); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("describe broker configs without cluster DESCRIBE_CONFIGS: %v", err)
	}
	alter := []kadm.AlterConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1234")}}
	ar, err := adm.AlterTopicConfigs(ctx, alter, "t-new")
	if err != nil || len(ar) != 1 || ar[0].Err != kerr.TopicAuthorizationFailed {
		t.Errorf("incremental alter configs without ALTER_CONFIGS: %v %+v", err, ar)
	}
	sr, err := adm.AlterTopicConfigsState(ctx, alter, "t-new")
	if err != nil || len(sr) != 1 || sr[0].Err != kerr.TopicAuthorizationFailed {
		t.Errorf("alter configs without ALTER_CONFIGS: %v %+v", err, sr)
	}
	if c := configMap(t, mustDescribe(t, kadm.NewClient(admin), "t-new"))["retention.ms"]; c.Value != nil && *c.Value == "1234" {
		t.Fatal("a denied alter changed retention.ms")
	}
	createACLs(t, admin, allow(rtTopic, "t-new", "alice", kmsg.ACLOperationAlterConfigs))
	if ar, err := adm.AlterTopicConfigs(ctx, alter, "t-new"); err != nil || ar[0].Err != nil {
		t.Fatalf("alter configs with ALTER_CONFIGS: %v %+v", err, ar)
	}
	if dc, err := adm.DescribeTopicConfigs(ctx, "t-new"); err != nil || dc[0].Err != nil {
		t.Fatalf("describe configs with ALTER_CONFIGS (implies DESCRIBE_CONFIGS): %v %+v", err, dc)
	}

	// DeleteTopics: DELETE.
	dr, err := adm.DeleteTopics(ctx, "t-new")
	if err != nil || dr["t-new"].Err != kerr.TopicAuthorizationFailed {
		t.Errorf("delete topic without DELETE: %v %+v", err, dr)
	}
	wantCode(t, "t-new after a denied delete", metaReq(admin, false, "t-new").Topics[0].ErrorCode, nil)
	createACLs(t, admin, allow(rtTopic, "t-new", "alice", kmsg.ACLOperationDelete))
	if dr, err := adm.DeleteTopics(ctx, "t-new"); err != nil || dr["t-new"].Err != nil {
		t.Fatalf("delete topic with DELETE: %v %+v", err, dr)
	}

	// The ACL APIs themselves need the cluster: DESCRIBE to list, ALTER to
	// change.
	describeAll := kmsg.NewPtrDescribeACLsRequest()
	describeAll.ResourceType, describeAll.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	describeAll.Operation, describeAll.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	da := request(t, alice, describeAll).(*kmsg.DescribeACLsResponse)
	wantCode(t, "describe acls without cluster DESCRIBE", da.ErrorCode, kerr.ClusterAuthorizationFailed)
	ca := kmsg.NewPtrCreateACLsRequest()
	ca.Creations = append(ca.Creations, kmsg.CreateACLsRequestCreation{ResourceType: rtTopic, ResourceName: "x",
		ResourcePatternType: kmsg.ACLResourcePatternTypeLiteral, Principal: "User:alice", Host: "*",
		Operation: kmsg.ACLOperationAll, PermissionType: kmsg.ACLPermissionTypeAllow})
	wantCode(t, "create acls without cluster ALTER", request(t, alice, ca).(*kmsg.CreateACLsResponse).Results[0].ErrorCode, kerr.ClusterAuthorizationFailed)
	del := kmsg.NewPtrDeleteACLsRequest()
	del.Filters = append(del.Filters, kmsg.DeleteACLsRequestFilter{ResourceType: kmsg.ACLResourceTypeAny,
		ResourcePatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, PermissionType: kmsg.ACLPermissionTypeAny})
	wantCode(t, "delete acls without cluster ALTER", request(t, alice, del).(*kmsg.DeleteACLsResponse).Results[0].ErrorCode, kerr.ClusterAuthorizationFailed)
	all := request(t, admin, describeAll).(*kmsg.DescribeACLsResponse)
	if all.ErrorCode != 0 || len(all.Resources) == 0 {
		t.Fatalf("describe acls as a super user: %v, %d resources", kerr.ErrorForCode(all.ErrorCode), len(all.Resources))
	}

	// DescribeCluster answers everyone, with the cluster operations the
	// principal may do if it may DESCRIBE the cluster (Kafka).
	dcl := kmsg.NewPtrDescribeClusterRequest()
	dcl.IncludeClusterAuthorizedOperations = true
	if ops := request(t, alice, dcl).(*kmsg.DescribeClusterResponse).ClusterAuthorizedOperations; ops != 0 {
		t.Errorf("describe cluster without cluster DESCRIBE: authorized operations %b, want 0", ops)
	}
	if ops := request(t, admin, dcl).(*kmsg.DescribeClusterResponse).ClusterAuthorizedOperations; ops&(1<<kmsg.ACLOperationAlter) == 0 {
		t.Errorf("describe cluster as a super user: authorized operations %b lack ALTER", ops)
	}

	// v0 of the ACL APIs (no pattern type) means LITERAL.
	admin11 := ta.as(t, "admin", kgo.MaxVersions(kversion.V1_1_0()))
	createACLs(t, admin11, allow(rtTopic, "v0-topic", "alice", kmsg.ACLOperationRead))
	d0 := kmsg.NewPtrDescribeACLsRequest()
	d0.ResourceType, d0.ResourceName = rtTopic, kmsg.StringPtr("v0-topic")
	d0.Operation, d0.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	r0 := request(t, admin11, d0).(*kmsg.DescribeACLsResponse)
	if r0.Version != 0 || r0.ErrorCode != 0 || len(r0.Resources) != 1 || len(r0.Resources[0].ACLs) != 1 {
		t.Fatalf("describe acls v%d: %v, %+v", r0.Version, kerr.ErrorForCode(r0.ErrorCode), r0.Resources)
	}
	d0.ResourcePatternType = kmsg.ACLResourcePatternTypeLiteral
	if r := request(t, admin, d0).(*kmsg.DescribeACLsResponse); len(r.Resources) != 1 || r.Resources[0].ResourcePatternType != kmsg.ACLResourcePatternTypeLiteral {
		t.Fatalf("an ACL created through v0 is not LITERAL: %+v", r.Resources)
	}
}

// TestACLGroupAPIs: FindCoordinator, Join/Sync/Heartbeat/Leave,
// OffsetCommit, OffsetFetch, DescribeGroups, ListGroups, DeleteGroups and
// OffsetDelete.
func TestACLGroupAPIs(t *testing.T) {
	forEachBackend(t, testACLGroupAPIs)
}

func testACLGroupAPIs(t *testing.T, bk backend) {
	ta := startAgent(t, bk, withACLs(nil))
	admin := ta.as(t, "admin")
	alice := ta.as(t, "alice")
	ctx := context.Background()
	createTopic(t, admin, "g-topic", 1, nil)
	produceN(t, admin, "g-topic", 1, 5, "")

	find := kmsg.NewPtrFindCoordinatorRequest()
	find.CoordinatorKey, find.CoordinatorKeys = "g1", []string{"g1"}
	fr := request(t, alice, find).(*kmsg.FindCoordinatorResponse)
	code := fr.ErrorCode
	if len(fr.Coordinators) == 1 {
		code = fr.Coordinators[0].ErrorCode
	}
	wantCode(t, "find coordinator without group DESCRIBE", code, kerr.GroupAuthorizationFailed)

	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g1", "consumer", 10000, 10000
	join.Protocols = append(join.Protocols, kmsg.JoinGroupRequestProtocol{Name: "range", Metadata: []byte{0, 0}})
	wantCode(t, "join group without READ", request(t, alice, join).(*kmsg.JoinGroupResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID = "g1", "m"
	wantCode(t, "sync group without READ", request(t, alice, sync).(*kmsg.SyncGroupResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID = "g1", "m"
	wantCode(t, "heartbeat without READ", request(t, alice, hb).(*kmsg.HeartbeatResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group, leave.MemberID = "g1", "m"
	leave.Members = append(leave.Members, kmsg.LeaveGroupRequestMember{MemberID: "m"})
	wantCode(t, "leave group without READ", request(t, alice, leave).(*kmsg.LeaveGroupResponse).ErrorCode, kerr.GroupAuthorizationFailed)

	commit := func(cl *kgo.Client) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = "g1", -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "g-topic"
		rt.Partitions = append(rt.Partitions, kmsg.OffsetCommitRequestTopicPartition{Partition: 0, Offset: 3, LeaderEpoch: -1})
		req.Topics = append(req.Topics, rt)
		return request(t, cl, req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	committed := func() int64 {
		os, err := kadm.NewClient(admin).FetchOffsets(ctx, "g1")
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := os.Lookup("g-topic", 0); ok {
			return o.At
		}
		return -1
	}
	wantCode(t, "offset commit without group READ", commit(alice), kerr.GroupAuthorizationFailed)
	createACLs(t, admin, allow(rtGroup, "g1", "alice", kmsg.ACLOperationRead))
	wantCode(t, "offset commit without topic READ", commit(alice), kerr.TopicAuthorizationFailed)
	if at := committed(); at != -1 {
		t.Fatalf("a denied offset commit stored offset %d", at)
	}

	fetchOffsets := func(cl *kgo.Client) (group, part int16) {
		req := kmsg.NewPtrOffsetFetchRequest()
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = "g1"
		rg.Topics = append(rg.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: "g-topic", Partitions: []int32{0}})
		req.Groups = append(req.Groups, rg)
		req.Group, req.Topics = "g1", []kmsg.OffsetFetchRequestTopic{{Topic: "g-topic", Partitions: []int32{0}}}
		resp := request(t, cl, req).(*kmsg.OffsetFetchResponse)
		if len(resp.Groups) == 1 {
			g := resp.Groups[0]
			if g.ErrorCode != 0 {
				return g.ErrorCode, 0
			}
			return 0, g.Topics[0].Partitions[0].ErrorCode
		}
		if resp.ErrorCode != 0 {
			return resp.ErrorCode, 0
		}
		return 0, resp.Topics[0].Partitions[0].ErrorCode
	}
	bob := ta.as(t, "bob")
	g, _ := fetchOffsets(bob)
	wantCode(t, "offset fetch without group DESCRIBE", g, kerr.GroupAuthorizationFailed)
	g, p := fetchOffsets(alice)
	wantCode(t, "offset fetch group error with group READ", g, nil)
	wantCode(t, "offset fetch without topic DESCRIBE", p, kerr.TopicAuthorizationFailed)

	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{"g1"}
	wantCode(t, "describe groups without DESCRIBE", request(t, bob, describe).(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)
	describe.IncludeAuthorizedOperations = true
	dgr := request(t, alice, describe).(*kmsg.DescribeGroupsResponse).Groups[0]
	wantCode(t, "describe groups with READ (implies DESCRIBE)", dgr.ErrorCode, nil)
	if want := int32(1<<kmsg.ACLOperationRead | 1<<kmsg.ACLOperationDescribe); dgr.AuthorizedOperations != want {
		t.Errorf("describe groups authorized operations for alice: %b, want %b", dgr.AuthorizedOperations, want)
	}
	deleteGroup := kmsg.NewPtrDeleteGroupsRequest()
	deleteGroup.Groups = []string{"g1"}
	wantCode(t, "delete group without DELETE", request(t, alice, deleteGroup).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g1"
	od.Topics = append(od.Topics, kmsg.OffsetDeleteRequestTopic{Topic: "g-topic", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}})
	wantCode(t, "offset delete without group DELETE", request(t, alice, od).(*kmsg.OffsetDeleteResponse).ErrorCode, kerr.GroupAuthorizationFailed)

	// With READ on the group and the topic, a real consumer group joins,
	// syncs, heartbeats, consumes and commits.
	createACLs(t, admin, allow(rtTopic, "g-topic", "alice", kmsg.ACLOperationRead))
	gc := ta.groupConsumer(t, "g1", "g-topic", kgo.ClientID("user:alice"))
	groupEventually(t, "alice's consumer commits", func() bool { return committed() == 5 })
	gc.stop()
	// Bob may not delete the group nor its offsets: both stay.
	wantCode(t, "offset delete by bob", request(t, bob, od).(*kmsg.OffsetDeleteResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	wantCode(t, "delete group by bob", request(t, bob, deleteGroup).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)
	if at := committed(); at != 5 {
		t.Fatalf("after denied deletes the committed offset is %d, want 5", at)
	}
	g, p = fetchOffsets(alice)
	wantCode(t, "offset fetch with READ", g, nil)
	wantCode(t, "offset fetch partition with READ", p, nil)

	// ListGroups shows bob nothing, alice g1 (DESCRIBE implied by READ).
	if ls, err := kadm.NewClient(bob).ListGroups(ctx); err != nil || len(ls) != 0 {
		t.Errorf("list groups without any DESCRIBE: %+v %v", ls, err)
	}
	if ls, err := kadm.NewClient(alice).ListGroups(ctx); err != nil || len(ls) != 1 {
		t.Errorf("list groups with DESCRIBE on g1: %+v %v", ls, err)
	}
	createACLs(t, admin, allow(rtGroup, "g1", "alice", kmsg.ACLOperationDelete))
	if delg, err := kadm.NewClient(alice).DeleteGroup(ctx, "g1"); err != nil || delg.Err != nil {
		t.Errorf("delete group with DELETE: %v %+v", err, delg)
	}
}

// TestACLTransactionAPIs: InitProducerId (transactional and idempotent),
// AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn,
// DescribeTransactions, ListTransactions and DescribeProducers.
func TestACLTransactionAPIs(t *testing.T) {
	forEachBackend(t, testACLTransactionAPIs)
}

func testACLTransactionAPIs(t *testing.T, bk backend) {
	ta := startAgent(t, bk, withACLs(nil))
	admin := ta.as(t, "admin")
	alice := ta.as(t, "alice")
	ctx := context.Background()
	createTopic(t, admin, "x-topic", 1, nil)

	initPID := func(cl *kgo.Client, txnID *string) int16 {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis = txnID, 10000
		req.ProducerID, req.ProducerEpoch = -1, -1
		return request(t, cl, req).(*kmsg.InitProducerIDResponse).ErrorCode
	}
	wantCode(t, "transactional init producer id without WRITE", initPID(alice, kmsg.StringPtr("tx1")), kerr.TransactionalIDAuthorizationFailed)
	wantCode(t, "idempotent init producer id without any WRITE", initPID(alice, nil), kerr.ClusterAuthorizationFailed)
	// A client's AddPartitionsToTxn is v3 or older (v4+ comes from brokers).
	alice35 := ta.as(t, "alice", kgo.MaxVersions(kversion.V3_5_0()))
	addParts := kmsg.NewPtrAddPartitionsToTxnRequest()
	addParts.TransactionalID, addParts.ProducerID, addParts.ProducerEpoch = "tx1", 1, 0
	addParts.Topics = append(addParts.Topics, kmsg.AddPartitionsToTxnRequestTopic{Topic: "x-topic", Partitions: []int32{0}})
	apr := request(t, alice35, addParts).(*kmsg.AddPartitionsToTxnResponse)
	wantCode(t, "add partitions to txn without WRITE", apr.Topics[0].Partitions[0].ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	addOffs := kmsg.NewPtrAddOffsetsToTxnRequest()
	addOffs.TransactionalID, addOffs.Group = "tx1", "txg"
	wantCode(t, "add offsets to txn without WRITE", request(t, alice, addOffs).(*kmsg.AddOffsetsToTxnResponse).ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	toc := kmsg.NewPtrTxnOffsetCommitRequest()
	toc.TransactionalID, toc.Group = "tx1", "txg"
	toc.Topics = append(toc.Topics, kmsg.TxnOffsetCommitRequestTopic{Topic: "x-topic", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}})
	wantCode(t, "txn offset commit without WRITE", request(t, alice, toc).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID = "tx1"
	wantCode(t, "end txn without WRITE", request(t, alice, end).(*kmsg.EndTxnResponse).ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	dt := kmsg.NewPtrDescribeTransactionsRequest()
	dt.TransactionalIDs = []string{"tx1"}
	wantCode(t, "describe transactions without DESCRIBE", request(t, alice, dt).(*kmsg.DescribeTransactionsResponse).TransactionStates[0].ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	dp := kmsg.NewPtrDescribeProducersRequest()
	dp.Topics = append(dp.Topics, kmsg.DescribeProducersRequestTopic{Topic: "x-topic", Partitions: []int32{0}})
	wantCode(t, "describe producers without READ", request(t, alice, dp).(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	// With WRITE on the id, but not on the topic: the partition is refused
	// and nothing is added.
	createACLs(t, admin, allow(rtTxn, "tx1", "alice", kmsg.ACLOperationWrite))
	apr = request(t, alice35, addParts).(*kmsg.AddPartitionsToTxnResponse)
	wantCode(t, "add partitions to txn without topic WRITE", apr.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	wantCode(t, "txn offset commit without group READ", request(t, alice, toc).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.GroupAuthorizationFailed)
	wantCode(t, "add offsets to txn without group READ", request(t, alice, addOffs).(*kmsg.AddOffsetsToTxnResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	// None of it reached the coordinator: tx1 does not exist yet.
	wantCode(t, "tx1 after denied requests", request(t, admin, dt).(*kmsg.DescribeTransactionsResponse).TransactionStates[0].ErrorCode, kerr.TransactionalIDNotFound)
	createACLs(t, admin, allow(rtGroup, "txg", "alice", kmsg.ACLOperationRead))
	wantCode(t, "txn offset commit without topic READ", request(t, alice, toc).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	// WRITE on the topic: a real transactional producer commits; WRITE on
	// some topic is also enough for an idempotent producer (KIP-679).
	createACLs(t, admin, allow(rtTopic, "x-topic", "alice", kmsg.ACLOperationWrite))
	wantCode(t, "idempotent init producer id with WRITE on a topic", initPID(alice, nil), nil)
	tp := ta.as(t, "alice", kgo.TransactionalID("tx1"), kgo.DefaultProduceTopic("x-topic"))
	if err := tp.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tp.ProduceSync(ctx, &kgo.Record{Value: []byte("txn")}).FirstErr(); err != nil {
		t.Fatalf("transactional produce with WRITE: %v", err)
	}
	if err := tp.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit with WRITE: %v", err)
	}
	createACLs(t, admin, allow(rtTxn, "tx1", "alice", kmsg.ACLOperationDescribe))
	wantCode(t, "describe transactions with DESCRIBE", request(t, alice, dt).(*kmsg.DescribeTransactionsResponse).TransactionStates[0].ErrorCode, nil)
	lt := request(t, ta.as(t, "bob"), kmsg.NewPtrListTransactionsRequest()).(*kmsg.ListTransactionsResponse)
	if len(lt.TransactionStates) != 0 {
		t.Errorf("list transactions shows bob %d transactions he may not describe", len(lt.TransactionStates))
	}
	lt = request(t, alice, kmsg.NewPtrListTransactionsRequest()).(*kmsg.ListTransactionsResponse)
	if len(lt.TransactionStates) != 1 {
		t.Errorf("list transactions shows alice %d transactions, want tx1", len(lt.TransactionStates))
	}
	createACLs(t, admin, allow(rtTopic, "x-topic", "alice", kmsg.ACLOperationRead))
	wantCode(t, "describe producers with READ", request(t, alice, dp).(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0].ErrorCode, nil)
}

// TestACLSemantics: DENY beats ALLOW, a PREFIXED ACL covers a topic created
// later, a User:* ACL covers everyone, super users pass, and
// allow.everyone.if.no.acl.found.
func TestACLSemantics(t *testing.T) {
	forEachBackend(t, testACLSemantics)
}

func testACLSemantics(t *testing.T, bk backend) {
	ta := startAgent(t, bk, withACLs(nil))
	admin := ta.as(t, "admin")
	alice := ta.as(t, "alice")
	createTopic(t, admin, "s-open", 1, nil)
	createTopic(t, admin, "s-closed", 1, nil)
	createACLs(t, admin,
		allow(rtTopic, "*", "alice", kmsg.ACLOperationAll),
		acl{rt: rtTopic, name: "s-closed", pattern: kmsg.ACLResourcePatternTypeLiteral, user: "alice", op: kmsg.ACLOperationWrite, deny: true},
		acl{rt: rtTopic, name: "team.", pattern: kmsg.ACLResourcePatternTypePrefixed, user: "bob", op: kmsg.ACLOperationWrite},
		allow(rtTopic, "s-open", "*", kmsg.ACLOperationWrite),
	)
	wantCode(t, "produce with ALLOW ALL on *", rawProduce(t, alice, "s-open", 0, batch("a")), nil)
	wantCode(t, "produce with ALLOW ALL on * and DENY WRITE", rawProduce(t, alice, "s-closed", 0, batch("a")), kerr.TopicAuthorizationFailed)

	bob := ta.as(t, "bob")
	createTopic(t, admin, "team.orders", 1, nil) // after the ACL
	wantCode(t, "produce under a PREFIXED ACL to a topic created later", rawProduce(t, bob, "team.orders", 0, batch("b")), nil)
	wantCode(t, "produce outside the prefix", rawProduce(t, bob, "s-closed", 0, batch("b")), kerr.TopicAuthorizationFailed)
	wantCode(t, "produce under User:*", rawProduce(t, ta.as(t, "carol"), "s-open", 0, batch("c")), nil)
	wantCode(t, "super user produce", rawProduce(t, admin, "s-closed", 0, batch("s")), nil)

	// Host filters: the client's IP must match.
	createTopic(t, admin, "s-host", 1, nil)
	local := allow(rtTopic, "s-host", "dave", kmsg.ACLOperationWrite)
	local.host = "127.0.0.1"
	elsewhere := allow(rtTopic, "s-host", "erin", kmsg.ACLOperationWrite)
	elsewhere.host = "10.9.9.9"
	createACLs(t, admin, local, elsewhere)
	wantCode(t, "produce from the ACL's host", rawProduce(t, ta.as(t, "dave"), "s-host", 0, batch("d")), nil)
	wantCode(t, "produce from another host", rawProduce(t, ta.as(t, "erin"), "s-host", 0, batch("e")), kerr.TopicAuthorizationFailed)
	if ends := listEnds(t, admin, "s-closed"); ends[0] != 1 {
		t.Fatalf("s-closed end offset %d; want only the super user's record", ends[0])
	}

	// allow.everyone.if.no.acl.found: a resource nobody has an ACL on is
	// open; one with ACLs for others is not.
	open := startAgent(t, bk, withACLs(func(c *agent.Config) { c.AllowEveryoneIfNoACL = true }))
	oadmin := open.as(t, "admin")
	createTopic(t, oadmin, "free", 1, nil)
	createTopic(t, oadmin, "guarded", 1, nil)
	createACLs(t, oadmin, allow(rtTopic, "guarded", "bob", kmsg.ACLOperationWrite))
	wantCode(t, "produce to a topic without ACLs (allow.everyone.if.no.acl.found)", rawProduce(t, open.as(t, "alice"), "free", 0, batch("f")), nil)
	wantCode(t, "produce to a topic with others' ACLs (allow.everyone.if.no.acl.found)", rawProduce(t, open.as(t, "alice"), "guarded", 0, batch("f")), kerr.TopicAuthorizationFailed)
}

// TestACLAPIsNeedAnAuthorizer: with authorizer=none the ACL APIs answer
// SECURITY_DISABLED, as Kafka without an authorizer, and everything else
// is allowed.
func TestACLAPIsNeedAnAuthorizer(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, nil)
	cl := ta.client(t)
	da := request(t, cl, kmsg.NewPtrDescribeACLsRequest()).(*kmsg.DescribeACLsResponse)
	wantCode(t, "describe acls with authorizer=none", da.ErrorCode, kerr.SecurityDisabled)
	createTopic(t, cl, "none", 1, nil)
	wantCode(t, "produce with authorizer=none", rawProduce(t, cl, "none", 0, batch("n")), nil)
}

// TestACLPropagation: an ACL created through one agent is enforced by
// another within 2 s (Postgres NOTIFY through the commit watch), and so
// is its deletion.
func TestACLPropagation(t *testing.T) {
	t.Parallel()
	s := postgresMinIO.newStorage(t)
	var agents []*testAgent
	for i := range 2 {
		agents = append(agents, startAgentOn(t, s.openStore(t), s.bucket, withACLs(func(c *agent.Config) {
			c.ID = "agent-" + string(rune('a'+i))
			c.Heartbeat = 50 * time.Millisecond
			c.MembershipTTL = 500 * time.Millisecond
		})))
	}
	// Each client talks to its agent only: no routing by leadership.
	adminCl := agents[0].as(t, "admin")
	createTopic(t, adminCl, "p-topic", 1, nil)
	admin := adminCl.SeedBrokers()[0]
	alice := agents[1].as(t, "alice").SeedBrokers()[0]
	produce := func() int16 {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		req.Topics = append(req.Topics, kmsg.ProduceRequestTopic{Topic: "p-topic",
			Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: batch("x")}}})
		return request(t, alice, req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	wantCode(t, "produce through agent b before the ACL", produce(), kerr.TopicAuthorizationFailed)
	createACLs(t, admin, allow(rtTopic, "p-topic", "alice", kmsg.ACLOperationWrite))
	poll.Within(t, "agent b enforces an ACL created through agent a", 2*time.Second, func() bool {
		return produce() == 0
	})
	del := kmsg.NewPtrDeleteACLsRequest()
	del.Filters = append(del.Filters, kmsg.DeleteACLsRequestFilter{ResourceType: rtTopic, ResourceName: kmsg.StringPtr("p-topic"),
		ResourcePatternType: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationAny, PermissionType: kmsg.ACLPermissionTypeAny})
	dr := request(t, admin, del).(*kmsg.DeleteACLsResponse)
	if dr.Results[0].ErrorCode != 0 || len(dr.Results[0].MatchingACLs) != 1 {
		t.Fatalf("delete acls: %v, %d matched", kerr.ErrorForCode(dr.Results[0].ErrorCode), len(dr.Results[0].MatchingACLs))
	}
	poll.Within(t, "agent b stops allowing after the ACL is deleted through agent a", 2*time.Second, func() bool {
		return produce() == kerr.TopicAuthorizationFailed.Code
	})
}
