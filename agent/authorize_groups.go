package agent

// Authorization of the consumer-group APIs (and TxnOffsetCommit), whose
// handlers hand the whole request to a coordinator: each function below checks the group
// and topics as Kafka's KafkaApis does, passes the coordinator only what
// is allowed (nothing at all if the group is denied) and adds the denied
// parts to its answer.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
)

var (
	groupDenied = kerr.GroupAuthorizationFailed.Code
	topicDenied = kerr.TopicAuthorizationFailed.Code
)

// authorizeOffsetCommit: READ on the group (else every partition
// GROUP_AUTHORIZATION_FAILED), READ on each topic (else its partitions
// TOPIC_AUTHORIZATION_FAILED).
func authorizeOffsetCommit(az access, req *kmsg.OffsetCommitRequest, commit func(*kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse) *kmsg.OffsetCommitResponse {
	if az.az == nil {
		return commit(req)
	}
	groupOK := az.group(metastore.OpRead, req.Group)
	var allowed []kmsg.OffsetCommitRequestTopic
	var denied []kmsg.OffsetCommitResponseTopic
	for _, rt := range req.Topics {
		code := groupDenied
		if groupOK {
			if az.topic(metastore.OpRead, rt.Topic) {
				allowed = append(allowed, rt)
				continue
			}
			code = topicDenied
		}
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = p.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		denied = append(denied, st)
	}
	if len(allowed) == 0 {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		resp.Topics = denied
		return resp
	}
	r := *req
	r.Topics = allowed
	resp := commit(&r)
	resp.Topics = append(resp.Topics, denied...)
	return resp
}

// authorizeOffsetFetch: DESCRIBE on the group (else
// GROUP_AUTHORIZATION_FAILED: per group from v8, top-level from v2, per
// partition before), DESCRIBE on each requested topic (else its partitions
// TOPIC_AUTHORIZATION_FAILED); a fetch of all topics lists only topics the
// principal may describe.
func authorizeOffsetFetch(az access, req *kmsg.OffsetFetchRequest, fetch func(*kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse) *kmsg.OffsetFetchResponse {
	if az.az == nil {
		return fetch(req)
	}
	if req.Version < 8 {
		if !az.group(metastore.OpDescribe, req.Group) {
			resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
			if req.Version >= 2 {
				resp.ErrorCode = groupDenied
			} else {
				resp.Topics = deniedOffsetFetchTopics(req.Topics, groupDenied)
			}
			return resp
		}
		r := *req
		var denied []kmsg.OffsetFetchRequestTopic
		if req.Topics != nil {
			r.Topics = make([]kmsg.OffsetFetchRequestTopic, 0, len(req.Topics))
			for _, rt := range req.Topics {
				if az.topic(metastore.OpDescribe, rt.Topic) {
					r.Topics = append(r.Topics, rt)
				} else {
					denied = append(denied, rt)
				}
			}
		}
		resp := fetch(&r)
		if req.Topics == nil {
			kept := resp.Topics[:0]
			for _, t := range resp.Topics {
				if az.topic(metastore.OpDescribe, t.Topic) {
					kept = append(kept, t)
				}
			}
			resp.Topics = kept
		} else if resp.ErrorCode == 0 {
			resp.Topics = append(resp.Topics, deniedOffsetFetchTopics(denied, topicDenied)...)
		}
		return resp
	}

	// v8+: several groups, each answered on its own.
	r := *req
	r.Groups = nil
	type deniedGroup struct {
		group  string
		topics []kmsg.OffsetFetchRequestGroupTopic // nil: the group itself
	}
	denied := make(map[string]deniedGroup)
	var groupsDenied []string
	for _, rg := range req.Groups {
		if !az.group(metastore.OpDescribe, rg.Group) {
			groupsDenied = append(groupsDenied, rg.Group)
			continue
		}
		if rg.Topics != nil {
			var dt []kmsg.OffsetFetchRequestGroupTopic
			topics := make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(rg.Topics))
			for _, rt := range rg.Topics {
				if az.topic(metastore.OpDescribe, rt.Topic) {
					topics = append(topics, rt)
				} else {
					dt = append(dt, rt)
				}
			}
			rg.Topics = topics
			denied[rg.Group] = deniedGroup{group: rg.Group, topics: dt}
		}
		r.Groups = append(r.Groups, rg)
	}
	resp := fetch(&r)
	for i := range resp.Groups {
		g := &resp.Groups[i]
		d, explicit := denied[g.Group]
		if !explicit {
			kept := g.Topics[:0]
			for _, t := range g.Topics {
				if az.topic(metastore.OpDescribe, t.Topic) {
					kept = append(kept, t)
				}
			}
			g.Topics = kept
			continue
		}
		if g.ErrorCode != 0 {
			continue
		}
		for _, rt := range d.topics {
			st := kmsg.NewOffsetFetchResponseGroupTopic()
			st.Topic = rt.Topic
			for _, p := range rt.Partitions {
				sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				sp.Partition, sp.Offset, sp.LeaderEpoch, sp.ErrorCode = p, -1, -1, topicDenied
				st.Partitions = append(st.Partitions, sp)
			}
			g.Topics = append(g.Topics, st)
		}
	}
	for _, id := range groupsDenied {
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group, g.ErrorCode = id, groupDenied
		resp.Groups = append(resp.Groups, g)
	}
	return resp
}

func deniedOffsetFetchTopics(ts []kmsg.OffsetFetchRequestTopic, code int16) []kmsg.OffsetFetchResponseTopic {
	var out []kmsg.OffsetFetchResponseTopic
	for _, rt := range ts {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch, sp.ErrorCode = p, -1, -1, code
			st.Partitions = append(st.Partitions, sp)
		}
		out = append(out, st)
	}
	return out
}

// authorizeOffsetDelete: DELETE on the group (else the top-level
// GROUP_AUTHORIZATION_FAILED), READ on each topic.
func authorizeOffsetDelete(az access, req *kmsg.OffsetDeleteRequest, del func(*kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse) *kmsg.OffsetDeleteResponse {
	if az.az == nil {
		return del(req)
	}
	if !az.group(metastore.OpDelete, req.Group) {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = groupDenied
		return resp
	}
	var allowed []kmsg.OffsetDeleteRequestTopic
	var denied []kmsg.OffsetDeleteResponseTopic
	for _, rt := range req.Topics {
		if az.topic(metastore.OpRead, rt.Topic) {
			allowed = append(allowed, rt)
			continue
		}
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition, sp.ErrorCode = p.Partition, topicDenied
			st.Partitions = append(st.Partitions, sp)
		}
		denied = append(denied, st)
	}
	if len(allowed) == 0 && len(denied) > 0 {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.Topics = denied
		return resp
	}
	r := *req
	r.Topics = allowed
	resp := del(&r)
	if resp.ErrorCode == 0 {
		resp.Topics = append(resp.Topics, denied...)
	}
	return resp
}

// authorizeDescribeGroups: DESCRIBE on each group.
func authorizeDescribeGroups(az access, req *kmsg.DescribeGroupsRequest, describe func(*kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse) *kmsg.DescribeGroupsResponse {
	if az.az == nil {
		return describe(req)
	}
	r := *req
	r.Groups = nil
	var denied []kmsg.DescribeGroupsResponseGroup
	for _, id := range req.Groups {
		if az.group(metastore.OpDescribe, id) {
			r.Groups = append(r.Groups, id)
			continue
		}
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group, g.ErrorCode = id, groupDenied
		denied = append(denied, g)
	}
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	if len(r.Groups) > 0 {
		resp = describe(&r)
	}
	if req.IncludeAuthorizedOperations {
		for i := range resp.Groups {
			if g := &resp.Groups[i]; g.ErrorCode == 0 {
				g.AuthorizedOperations = az.groupOperations(g.Group)
			}
		}
	}
	resp.Groups = append(resp.Groups, denied...)
	return resp
}

// authorizeListGroups: everything with DESCRIBE on the cluster, else only
// the groups the principal may describe.
func authorizeListGroups(az access, resp *kmsg.ListGroupsResponse) *kmsg.ListGroupsResponse {
	if az.az == nil || az.cluster(metastore.OpDescribe) {
		return resp
	}
	kept := resp.Groups[:0]
	for _, g := range resp.Groups {
		if az.group(metastore.OpDescribe, g.Group) {
			kept = append(kept, g)
		}
	}
	resp.Groups = kept
	return resp
}

// authorizeDeleteGroups: DELETE on each group.
func authorizeDeleteGroups(az access, req *kmsg.DeleteGroupsRequest, del func(*kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse) *kmsg.DeleteGroupsResponse {
	if az.az == nil {
		return del(req)
	}
	r := *req
	r.Groups = nil
	var denied []kmsg.DeleteGroupsResponseGroup
	for _, id := range req.Groups {
		if az.group(metastore.OpDelete, id) {
			r.Groups = append(r.Groups, id)
			continue
		}
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group, g.ErrorCode = id, groupDenied
		denied = append(denied, g)
	}
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	if len(r.Groups) > 0 {
		resp = del(&r)
	}
	resp.Groups = append(resp.Groups, denied...)
	return resp
}

// authorizeTxnOffsetCommit: WRITE on the transactional id (else every
// partition TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the group (else
// GROUP_AUTHORIZATION_FAILED), READ on each topic. It returns the request
// to carry out (nil: none, and the second result is the whole answer) and
// the answer for the denied topics (nil if none), which the caller
// appends; the rest is committed, as in Kafka.
func authorizeTxnOffsetCommit(az access, req *kmsg.TxnOffsetCommitRequest) (*kmsg.TxnOffsetCommitRequest, *kmsg.TxnOffsetCommitResponse) {
	switch {
	case az.az == nil:
		return req, nil
	case !az.txnID(metastore.OpWrite, req.TransactionalID):
		return nil, txnOffsetCommitError(req.Version, req.Topics, kerr.TransactionalIDAuthorizationFailed.Code)
	case !az.group(metastore.OpRead, req.Group):
		return nil, txnOffsetCommitError(req.Version, req.Topics, groupDenied)
	}
	r := *req
	r.Topics = nil
	var denied []kmsg.TxnOffsetCommitRequestTopic
	for _, rt := range req.Topics {
		if az.topic(metastore.OpRead, rt.Topic) {
			r.Topics = append(r.Topics, rt)
		} else {
			denied = append(denied, rt)
		}
	}
	if len(denied) > 0 && len(r.Topics) == 0 {
		return nil, txnOffsetCommitError(req.Version, denied, topicDenied)
	}
	if len(denied) == 0 {
		return &r, nil
	}
	return &r, txnOffsetCommitError(req.Version, denied, topicDenied)
}

// txnOffsetCommitError answers every partition of topics with code.
func txnOffsetCommitError(version int16, topics []kmsg.TxnOffsetCommitRequestTopic, code int16) *kmsg.TxnOffsetCommitResponse {
	resp := kmsg.NewPtrTxnOffsetCommitResponse()
	resp.Version = version
	for _, rt := range topics {
		t := kmsg.NewTxnOffsetCommitResponseTopic()
		t.Topic = rt.Topic
		for _, p := range rt.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			t.Partitions = append(t.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}
