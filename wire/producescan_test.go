package wire

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceBody encodes a Produce request body (no header) at version.
func produceBody(version int16, topics, partitions int, txnID *string) []byte {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.TransactionID = txnID
	req.Acks = -1
	for i := range topics {
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = string(rune('a' + i))
		rt.TopicID = [16]byte{byte(i)}
		for j := range partitions {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = int32(j)
			if j%2 == 0 {
				rp.Records = make([]byte, 70+j)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req.AppendTo(nil)
}

// TestScanProduceMatchesKmsg: the scan accepts what kmsg encodes, at every
// version it knows, and counts what kmsg decodes.
func TestScanProduceMatchesKmsg(t *testing.T) {
	for v := int16(0); v <= 13; v++ {
		for _, txn := range []*string{nil, strp("txn")} {
			if v < 3 && txn != nil {
				continue // v0–v2 have no transactional id
			}
			body := produceBody(v, 3, 4, txn)
			topics, partitions, err := scanProduce(v, body)
			if err != nil || topics != 3 || partitions != 12 {
				t.Errorf("v%d: %d topics, %d partitions, err %v; want 3, 12", v, topics, partitions, err)
			}
			if _, _, err := scanProduce(v, body[:len(body)-1]); err == nil {
				t.Errorf("v%d: a truncated body scanned", v)
			}
		}
	}
}

func FuzzScanProduce(f *testing.F) {
	for v := int16(0); v <= 13; v++ {
		f.Add(v, produceBody(v, 2, 2, nil))
	}
	f.Fuzz(func(t *testing.T, version int16, body []byte) {
		topics, partitions, err := scanProduce(version, body)
		if err != nil {
			return
		}
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(version)
		if err := req.ReadFrom(body); err != nil {
			t.Fatalf("v%d: scanned (%d topics, %d partitions) but kmsg fails: %v", version, topics, partitions, err)
		}
		var n int64
		for _, rt := range req.Topics {
			n += int64(len(rt.Partitions))
		}
		if int64(len(req.Topics)) != topics || n != partitions {
			t.Fatalf("v%d: scanned %d topics, %d partitions; kmsg decoded %d, %d", version, topics, partitions, len(req.Topics), n)
		}
	})
}
