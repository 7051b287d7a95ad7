// Package sharerow is how both stores keep a share partition
// (metastore.SharePartitionState) in their share_partitions table: its
// in-flight batches as JSON text, one object per run of offsets in one
// state. Only metastore/postgres and metastore/sqlite use it.
package sharerow

import (
	"encoding/json"
	"fmt"

	"github.com/siltstream/silt/metastore"
)

// batch is one metastore.ShareBatch as stored.
type batch struct {
	First  int64  `json:"first"`
	Last   int64  `json:"last"`
	State  int8   `json:"state"`
	Count  int16  `json:"delivery_count"`
	Member string `json:"member,omitempty"`
	Lock   int64  `json:"lock_until_ms,omitempty"`
}

// Encode is the batches column of bs.
func Encode(bs []metastore.ShareBatch) string {
	out := make([]batch, len(bs))
	for i, b := range bs {
		out[i] = batch{b.First, b.Last, int8(b.State), b.DeliveryCount, b.Member, b.LockUntilMs}
	}
	enc, _ := json.Marshal(out) // plain data: cannot fail
	return string(enc)
}

// Decode reads a batches column.
func Decode(s string) ([]metastore.ShareBatch, error) {
	var in []batch
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("decode share batches: %w", err)
	}
	var out []metastore.ShareBatch
	for _, b := range in {
		out = append(out, metastore.ShareBatch{
			First: b.First, Last: b.Last, State: metastore.ShareRecordState(b.State),
			DeliveryCount: b.Count, Member: b.Member, LockUntilMs: b.Lock,
		})
	}
	return out, nil
}

// EncodeConfig is the configs column of a group's configs: JSON with
// sorted keys, so equal maps encode alike (the compare-and-set compares
// the text).
func EncodeConfig(cfg map[string]string) string {
	if cfg == nil {
		cfg = map[string]string{}
	}
	enc, _ := json.Marshal(cfg) // plain data: cannot fail
	return string(enc)
}

// DecodeConfig reads a configs column.
func DecodeConfig(s string) (map[string]string, error) {
	out := map[string]string{}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("decode group configs: %w", err)
	}
	return out, nil
}
