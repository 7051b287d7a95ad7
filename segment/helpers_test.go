package segment

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siltstream/silt/objectstore"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// batchSpec describes a producer batch built with kmsg.
type batchSpec struct {
	baseOffset int64
	records    int
	valueSize  int
	firstTS    int64
	attrs      int16
	producerID int64
	seed       byte
}

// makeBatch encodes a v2 record batch the way a client would, CRC included.
func makeBatch(s batchSpec) []byte {
	var recs []byte
	for i := range s.records {
		v := make([]byte, s.valueSize)
		for j := range v {
			v[j] = s.seed + byte(i+j)
		}
		r := kmsg.Record{
			TimestampDelta64: int64(i),
			OffsetDelta:      int32(i),
			Key:              fmt.Appendf(nil, "k%d", i),
			Value:            v,
		}
		body := r.AppendTo(nil) // with Length 0, a one-byte varint
		r.Length = int32(len(body) - 1)
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		FirstOffset:     s.baseOffset,
		Magic:           2,
		Attributes:      s.attrs,
		LastOffsetDelta: int32(s.records - 1),
		FirstTimestamp:  s.firstTS,
		MaxTimestamp:    s.firstTS + int64(s.records) - 1,
		ProducerID:      s.producerID,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(s.records),
		Records:         recs,
	}
	if s.producerID == 0 {
		b.ProducerID = -1
	}
	b.Length = int32(BatchHeaderSize - 12 + len(recs))
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[17:], Checksum(raw[21:]))
	return raw
}

// recrc recomputes the CRC of a batch a test has tampered with.
func recrc(b []byte) []byte {
	binary.BigEndian.PutUint32(b[17:], Checksum(b[21:]))
	return b
}

func topicID(name string) [16]byte {
	var id [16]byte
	copy(id[:], "id-"+name)
	return id
}

// fakeBucket is a minimal in-memory objectstore.Bucket that records the
// ranges it serves.
type fakeBucket struct {
	mu      sync.Mutex
	objects map[string][]byte
	gets    []string // "off+len" per Get
	heads   int
}

var _ objectstore.Bucket = (*fakeBucket)(nil)

func newFakeBucket() *fakeBucket { return &fakeBucket{objects: map[string][]byte{}} }

func (f *fakeBucket) Put(ctx context.Context, key string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[key] = append([]byte(nil), data...)
	return ctx.Err()
}

func (f *fakeBucket) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, objectstore.ErrNotFound)
	}
	if off < 0 || off > int64(len(o)) {
		return nil, fmt.Errorf("get %s at %d: %w", key, off, objectstore.ErrInvalidRange)
	}
	end := int64(len(o))
	if length >= 0 && off+length < end {
		end = off + length
	}
	f.gets = append(f.gets, fmt.Sprintf("%d+%d", off, length))
	return append([]byte(nil), o[off:end]...), nil
}

func (f *fakeBucket) Head(ctx context.Context, key string) (objectstore.Attrs, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.heads++
	o, ok := f.objects[key]
	if !ok {
		return objectstore.Attrs{}, fmt.Errorf("head %s: %w", key, objectstore.ErrNotFound)
	}
	return objectstore.Attrs{Key: key, Size: int64(len(o)), LastModified: time.Unix(0, 0)}, ctx.Err()
}

func (f *fakeBucket) Delete(ctx context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objects, key)
	return ctx.Err()
}

func (f *fakeBucket) List(ctx context.Context, prefix string, fn func(objectstore.Attrs) error) error {
	f.mu.Lock()
	var keys []string
	for k := range f.objects {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	f.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		a, err := f.Head(ctx, k)
		if err != nil {
			continue
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeBucket) Close() error { return nil }

func mustValidate(t testing.TB, b []byte) BatchHeader {
	t.Helper()
	h, err := ValidateBatch(b)
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	return h
}
