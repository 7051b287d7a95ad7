package wire

import (
	"context"
	"reflect"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/semaphore"
)

// Memory for requests. Every request frame reserves room in one budget
// shared by all connections (Config.MaxInflightRequestBytes) before its
// body is read, and gives it back once its response is written (or it is
// answered with no response, or its connection closes). A connection whose
// next frame does not fit stops reading until earlier requests finish, so
// the bytes of frames read but not answered never exceed the budget — except
// that a single frame larger than the whole budget (but within
// MaxRequestBytes) is served alone, holding all of it.
//
// Decoding is part of the cost: kmsg allocates one Go struct per array
// element a request claims, and a claim only needs one byte per element
// behind it, so a hostile 4 MiB Fetch body decodes into hundreds of MiB. A
// request's reservation covers its worst-case decode (decodeAmp), computed
// from its API's types; a request whose worst case exceeds the budget is
// refused before it is read. Produce is the exception that lets large
// frames through: its body is walked first (scanProduce), which checks
// every claimed array against the bytes behind it and counts the elements,
// so its exact decoded size is known and must stay within produceDecodeRatio
// of the frame. After decoding, a reservation shrinks to the frame plus
// what the request actually decoded into.
//
// With Config.ProduceBudget set (the agent sets it to its write buffer),
// Produce frames reserve there instead (see producebudget.go), and the
// request budget bounds every other request. Without it, a Produce request
// holds its reservation here until it is answered.

// budget is the shared in-flight request budget.
type budget struct {
	sem     *semaphore.Weighted
	limit   int64
	inUse   atomic.Int64
	waiting atomic.Int64 // readers waiting for room
}

func newBudget(limit int64) *budget {
	return &budget{sem: semaphore.NewWeighted(limit), limit: limit}
}

// acquire waits for n bytes (at most the whole budget) or ctx.
func (b *budget) acquire(ctx context.Context, n int64) error {
	if !b.sem.TryAcquire(n) {
		b.waiting.Add(1)
		err := b.sem.Acquire(ctx, n)
		b.waiting.Add(-1)
		if err != nil {
			return err
		}
	}
	b.inUse.Add(n)
	return nil
}

func (b *budget) release(n int64) {
	if n > 0 {
		b.inUse.Add(-n)
		b.sem.Release(n)
	}
}

// decodeAmp is, per API key, a bound on the bytes kmsg allocates per byte of
// body: for each array field (at each position in the request's type tree),
// a claim can allocate one element per remaining byte, and elements that
// decode fully take at least a byte each, so each position contributes at
// most twice its element size per byte. Strings and byte slices alias or
// copy what is present (one byte per byte).
func decodeAmp(key int16) int64 {
	req := kmsg.RequestForKey(key)
	if req == nil {
		return 1
	}
	return 1 + 2*sliceElemBytes(reflect.TypeOf(req).Elem(), 0)
}

// sliceElemBytes sums the element sizes of every non-byte slice reachable
// from struct type t, one term per field position.
func sliceElemBytes(t reflect.Type, depth int) int64 {
	if depth > 8 { // kmsg types are not recursive; be safe anyway
		return 0
	}
	var sum int64
	for i := range t.NumField() {
		ft := t.Field(i).Type
		switch {
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() != reflect.Uint8:
			sum += int64(ft.Elem().Size())
			if ft.Elem().Kind() == reflect.Struct {
				sum += sliceElemBytes(ft.Elem(), depth+1)
			}
		case ft.Kind() == reflect.Struct:
			sum += sliceElemBytes(ft, depth+1)
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
			sum += int64(ft.Elem().Size()) + sliceElemBytes(ft.Elem(), depth+1)
		}
	}
	return sum
}

// decodedBytes is what a decoded request holds beyond its frame: the
// backing arrays of its slices (byte slices alias the frame).
func decodedBytes(v reflect.Value) int64 {
	var n int64
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			n += int64(v.Elem().Type().Size()) + decodedBytes(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			n += decodedBytes(v.Field(i))
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return 0
		}
		n += int64(v.Cap()) * int64(v.Type().Elem().Size())
		for i := range v.Len() {
			n += decodedBytes(v.Index(i))
		}
	case reflect.String:
		n += int64(v.Len())
	}
	return n
}

// produceDecodeRatio bounds a Produce request's decoded structs relative to
// its frame. Each partition of a real produce carries a record batch (61
// bytes of header at least) that outweighs its struct; only a body of
// empty topics and partitions gets near the bound.
const produceDecodeRatio = 2

// admission is what reading a frame of size bytes for API key costs: the
// reservation to take before reading its body, or an error refusing it.
func (s *Server) admission(key int16, size int32) (int64, error) {
	lim := s.budget.limit
	if key == int16(kmsg.Produce) {
		return min(int64(size), lim), nil // decode checked by scanProduce
	}
	amp, ok := s.decodeAmp[key]
	if !ok {
		return min(int64(size), lim), nil // unknown key: refused at parse, undecoded
	}
	worst := int64(size) * (1 + amp)
	if worst > lim {
		return 0, protocolErrorf("%s request of %d bytes could decode into %d bytes, more than the in-flight request budget of %d (queued.max.request.bytes)",
			kmsg.NameForKey(key), size, worst, lim)
	}
	return worst, nil
}

// checkProduceDecode walks a Produce body and refuses one whose claimed
// arrays are not backed by bytes or would decode into more than
// produceDecodeRatio times its size.
func checkProduceDecode(version int16, body []byte) error {
	topics, partitions, err := scanProduce(version, body)
	if err != nil {
		return protocolErrorf("produce v%d body of %d bytes: %v", version, len(body), err)
	}
	cost := topics*produceTopicSize + partitions*producePartitionSize
	if cost > produceDecodeRatio*int64(len(body))+4096 {
		return protocolErrorf("produce v%d body of %d bytes holds %d topics and %d partitions: it would decode into %d bytes",
			version, len(body), topics, partitions, cost)
	}
	return nil
}

var (
	produceTopicSize     = int64(reflect.TypeFor[kmsg.ProduceRequestTopic]().Size())
	producePartitionSize = int64(reflect.TypeFor[kmsg.ProduceRequestTopicPartition]().Size())
)
