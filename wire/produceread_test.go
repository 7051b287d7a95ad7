package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceSeeds are Produce frames (without the size prefix) of every
// streamed version, with several topics, partitions, a null record set
// and a transactional id.
func produceSeeds() [][]byte {
	var out [][]byte
	for v := int16(minStreamedProduceVersion); v <= maxStreamedProduceVersion; v++ {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		req.TransactionID = strp("tx")
		for ti, name := range []string{"a", "bb"} {
			t := kmsg.NewProduceRequestTopic()
			t.Topic = name
			t.TopicID[0] = byte(ti + 1)
			for p := range 3 {
				part := kmsg.NewProduceRequestTopicPartition()
				part.Partition = int32(p)
				if p != 1 {
					part.Records = bytes.Repeat([]byte{byte(p)}, 70+p)
				}
				t.Partitions = append(t.Partitions, part)
			}
			req.Topics = append(req.Topics, t)
		}
		out = append(out, encodeRequest(req, v, int32(v), strp("client"))[4:])
	}
	return out
}

// clearTags drops what readProduce does not keep: unknown tagged fields,
// which no handler reads.
func clearTags(req *kmsg.ProduceRequest) {
	req.UnknownTags = kmsg.Tags{}
	for i := range req.Topics {
		t := &req.Topics[i]
		t.UnknownTags = kmsg.Tags{}
		for j := range t.Partitions {
			t.Partitions[j].UnknownTags = kmsg.Tags{}
		}
	}
}

// readProduce accepts exactly the Produce frames parseRequest accepts and
// decodes them into the same request.
func FuzzReadProduce(f *testing.F) {
	for _, s := range produceSeeds() {
		f.Add(s)
	}
	reg := allKeysRegistry()
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < minRequestHeaderLen {
			return
		}
		// Only Produce frames of a streamed version are read this way.
		binary.BigEndian.PutUint16(frame, uint16(kmsg.Produce))
		span := uint16(maxStreamedProduceVersion - minStreamedProduceVersion + 1)
		binary.BigEndian.PutUint16(frame[2:], minStreamedProduceVersion+binary.BigEndian.Uint16(frame[2:])%span)
		want, werr := parseRequest(reg, frame)
		h, got, gerr := readProduce(bufio.NewReader(bytes.NewReader(frame)), int32(len(frame)))
		if werr == nil && gerr != nil && strings.Contains(gerr.Error(), tooCostly) {
			return // the documented difference: growth is counted
		}
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("parseRequest: %v; readProduce: %v", werr, gerr)
		}
		if werr != nil {
			return
		}
		wreq := want.req.(*kmsg.ProduceRequest)
		clearTags(wreq)
		if !reflect.DeepEqual(wreq, got) {
			t.Fatalf("decoded differently:\nparseRequest %+v\nreadProduce  %+v", wreq, got)
		}
		if h.key != want.hdr.key || h.version != want.hdr.version || h.correlationID != want.hdr.correlationID ||
			(h.clientID == nil) != (want.hdr.clientID == nil) || (h.clientID != nil && *h.clientID != *want.hdr.clientID) {
			t.Fatalf("header %+v, want %+v", h, want.hdr)
		}
	})
}

// Each record set of a streamed Produce frame is an allocation of its own:
// keeping one keeps nothing else of the frame.
func TestReadProduceRecordSetsStandAlone(t *testing.T) {
	frame := produceSeeds()[len(produceSeeds())-1]
	_, req, err := readProduce(bufio.NewReader(bytes.NewReader(frame)), int32(len(frame)))
	if err != nil {
		t.Fatal(err)
	}
	var sets [][]byte
	for _, tp := range req.Topics {
		for _, p := range tp.Partitions {
			if p.Records != nil {
				sets = append(sets, p.Records)
			}
		}
	}
	if len(sets) != 4 {
		t.Fatalf("%d record sets, want 4", len(sets))
	}
	for i, s := range sets {
		if cap(s) != len(s) {
			t.Errorf("record set %d: capacity %d beyond its %d bytes: it shares an allocation", i, cap(s), len(s))
		}
		for j, o := range sets {
			if i != j && &s[:cap(s)][cap(s)-1] == &o[:cap(o)][cap(o)-1] {
				t.Errorf("record sets %d and %d share memory", i, j)
			}
		}
	}
}
