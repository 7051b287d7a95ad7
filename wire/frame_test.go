package wire

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// bigFetchResponse is a Fetch response of version v carrying records
// bytes in each of parts partitions of two topics, with the optional
// fields that grow a partition's encoding set.
func bigFetchResponse(v int16, parts, records int) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(v)
	rack := "rack-a"
	resp.Brokers = []kmsg.FetchResponseBroker{{NodeID: 1, Host: strings.Repeat("h", 200), Port: 9092, Rack: &rack}}
	for _, name := range []string{"t", strings.Repeat("long-topic-name-", 15)} {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = name
		for p := range parts {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition = int32(p)
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = 1<<40, 1<<40, 1<<39
			for i := range 3 {
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = 1<<50+int64(i), 1<<41
				rp.AbortedTransactions = append(rp.AbortedTransactions, at)
			}
			rp.DivergingEpoch.Epoch, rp.DivergingEpoch.EndOffset = 5, 1<<40
			rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = 3, 7
			rp.RecordBatches = bytes.Repeat([]byte{byte(p)}, records)
			t.Partitions = append(t.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// allocatedBytes is what f allocates on the heap (the test runs alone, so
// little else allocates meanwhile).
func allocatedBytes(f func()) int {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return int(after.TotalAlloc - before.TotalAlloc)
}

// A Fetch response is encoded into a buffer sized once from its record
// data, not grown by append while it doubles (which allocates about twice
// the frame), and the frame is the same.
func TestAppendResponseSizesFetchOnce(t *testing.T) {
	for _, v := range []int16{4, 11, 12, 13, 16, 17} {
		resp := bigFetchResponse(v, 32, 64<<10)
		out := appendResponse(nil, 7, resp)
		want := append([]byte{0, 0, 0, 0, 0, 0, 0, 7}, resp.AppendTo(nil)...)
		if resp.IsFlexible() {
			want = append(append(want[:8:8], 0), resp.AppendTo(nil)...)
		}
		if !bytes.Equal(out[4:], want[4:]) {
			t.Errorf("v%d: frame differs from the response's own encoding", v)
		}
		if n := allocatedBytes(func() { appendResponse(nil, 7, resp) }); n > len(out)*5/4 {
			t.Errorf("v%d: encoding a %d-byte Fetch response allocated %d bytes", v, len(out), n)
		}
	}
}

// The same holds for ShareFetch, the other response that carries records.
func TestAppendResponseSizesShareFetchOnce(t *testing.T) {
	resp := kmsg.NewPtrShareFetchResponse()
	resp.SetVersion(1)
	msg := strings.Repeat("m", 100)
	resp.ErrorMessage = &msg
	for range 2 {
		t := kmsg.NewShareFetchResponseTopic()
		for p := range 16 {
			sp := kmsg.NewShareFetchResponseTopicPartition()
			sp.Partition = int32(p)
			sp.ErrorMessage, sp.AcknowledgeErrorMessage = &msg, &msg
			for range 4 {
				ar := kmsg.NewShareFetchResponseTopicPartitionAcquiredRecord()
				ar.FirstOffset, ar.LastOffset, ar.DeliveryCount = 1<<40, 1<<41, 3
				sp.AcquiredRecords = append(sp.AcquiredRecords, ar)
			}
			sp.Records = bytes.Repeat([]byte{1}, 64<<10)
			t.Partitions = append(t.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, t)
	}
	out := appendResponse(nil, 7, resp)
	if n := allocatedBytes(func() { appendResponse(nil, 7, resp) }); n > len(out)*5/4 {
		t.Errorf("encoding a %d-byte ShareFetch response allocated %d bytes", len(out), n)
	}
}
