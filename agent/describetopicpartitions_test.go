package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeTopicPartitions: named topics come back sorted, with their
// partitions led as Metadata says and unknown names flagged; all topics
// page through a small partition limit with the cursor, as Kafka pages
// them; a cursor naming a topic not asked for is INVALID_REQUEST.
func TestDescribeTopicPartitions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ta := startAgent(t, bk, nil)
		cl := ta.client(t)
		createTopic(t, cl, "dtp-a", 3, nil)
		createTopic(t, cl, "dtp-b", 2, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		describe := func(limit int32, cursor *kmsg.DescribeTopicPartitionsRequestCursor, names ...string) *kmsg.DescribeTopicPartitionsResponse {
			t.Helper()
			req := kmsg.NewPtrDescribeTopicPartitionsRequest()
			req.ResponsePartitionLimit, req.Cursor = limit, cursor
			for _, n := range names {
				rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
				rt.Topic = n
				req.Topics = append(req.Topics, rt)
			}
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
		// page renders an answer as "topic:err:p0,p1 ... >cursor".
		page := func(resp *kmsg.DescribeTopicPartitionsResponse) string {
			var b strings.Builder
			for _, st := range resp.Topics {
				fmt.Fprintf(&b, "%s:%d:", *st.Topic, st.ErrorCode)
				for i, p := range st.Partitions {
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, "%d", p.Partition)
				}
				b.WriteByte(' ')
			}
			if c := resp.NextCursor; c != nil {
				fmt.Fprintf(&b, ">%s/%d", c.Topic, c.Partition)
			}
			return b.String()
		}
		unknown := kerr.UnknownTopicOrPartition.Code
		if got, want := page(describe(10, nil, "dtp-b", "missing", "dtp-a")), fmt.Sprintf("dtp-a:0:0,1,2 dtp-b:0:0,1 missing:%d: ", unknown); got != want {
			t.Fatalf("named topics: %q, want %q", got, want)
		}
		// Leaders and replicas are those Metadata lists.
		md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		resp := describe(10, nil, "dtp-a")
		for _, mt := range md.Topics {
			if *mt.Topic != "dtp-a" {
				continue
			}
			for i, mp := range mt.Partitions {
				dp := resp.Topics[0].Partitions[i]
				if dp.LeaderID != mp.Leader || dp.LeaderEpoch != mp.LeaderEpoch || len(dp.Replicas) != 1 || dp.Replicas[0] != mp.Leader || resp.Topics[0].TopicID != mt.TopicID {
					t.Fatalf("partition %d: %+v, metadata says %+v", i, dp, mp)
				}
			}
		}

		// Every topic, two partitions per page.
		var pages []string
		var cursor *kmsg.DescribeTopicPartitionsRequestCursor
		for range 5 {
			resp := describe(2, cursor)
			pages = append(pages, page(resp))
			if resp.NextCursor == nil {
				break
			}
			cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: resp.NextCursor.Topic, Partition: resp.NextCursor.Partition}
		}
		if got, want := strings.Join(pages, "| "), "dtp-a:0:0,1 >dtp-a/2| dtp-a:0:2 dtp-b:0:0 >dtp-b/1| dtp-b:0:1 "; got != want {
			t.Fatalf("pages %q, want %q", got, want)
		}

		bad := describe(10, &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "dtp-b"}, "dtp-a")
		if got, want := page(bad), fmt.Sprintf("dtp-a:%d: ", kerr.InvalidRequest.Code); got != want {
			t.Fatalf("cursor outside the named topics: %q, want %q", got, want)
		}
	})
}
