package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/internal/testenv"
)

// TestClusterLifecycleSurvivesSIGKILL ("safe under faults", the lifecycle
// issue's done-when): retention, compaction into
// per-partition segments, keyed compaction and garbage collection all run
// every second (gc.grace 2 s) on three agents while idempotent producers
// write three topics and agents are SIGKILLed in turn and restarted, so
// swaps and deletions are cut off mid-way; a consumer reads one topic from
// its start all along. Then:
//   - kept (no retention): every acknowledged record is there, once, at
//     the offset its acknowledgement gave;
//   - expiring (retention.ms 3 s): the log start moved; every acknowledged
//     record at or above it is there, once, at its offset, and nothing
//     else is;
//   - keyed (cleanup.policy=compact): offsets strictly increase, every
//     record read is the acknowledged one at its offset, and each key's
//     last record is the last one acknowledged for it;
//   - the consumer saw no fetch error (a reset below the log start is not
//     one: it is not read there), and every index row's object exists.
func TestClusterLifecycleSurvivesSIGKILL(t *testing.T) {
	t.Setenv("SILT_COMPACTION_INTERVAL", "1s")
	t.Setenv("SILT_GC_GRACE", "2s")
	t.Setenv("SILT_COMPACTION_SEGMENT_BYTES", "1MiB")
	// The agents are stopped before the final check; clients still
	// connected (the admin client) would hold each in its drain.
	t.Setenv("SILT_SHUTDOWN_DRAIN", "100ms")
	c := startSiltCluster(t, 3)
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	ctx := context.Background()
	const partitions = 4
	for topic, configs := range map[string]map[string]*string{
		"kept":     nil,
		"expiring": {"retention.ms": kadm.StringPtr("3000")},
		"keyed":    {"cleanup.policy": kadm.StringPtr("compact"), "min.cleanable.dirty.ratio": kadm.StringPtr("0.01"), "delete.retention.ms": kadm.StringPtr("1000")},
	} {
		resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
	}

	// Producers: what was acknowledged, by topic, partition and offset.
	var mu sync.Mutex
	acked := make(map[ackedAt]string)
	pctx, stopProducing := context.WithCancel(ctx)
	var producers sync.WaitGroup
	for _, topic := range []string{"kept", "expiring", "keyed"} {
		producers.Add(1)
		go func() {
			defer producers.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.DefaultProduceTopic(topic),
				kgo.RecordDeliveryTimeout(time.Minute), kgo.ProducerLinger(5*time.Millisecond))
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			// Bursts of 20, each waited for: a trickle paced by the
			// acknowledgements, so many small flushes, rows and swaps.
			for i := 0; pctx.Err() == nil; i++ {
				v := fmt.Sprintf("%s-%06d", topic, i)
				r := &kgo.Record{Value: []byte(v)}
				if topic == "keyed" {
					r.Key = fmt.Appendf(nil, "k%03d", i%150)
				}
				cl.Produce(ctx, r, func(r *kgo.Record, err error) {
					if err == nil {
						mu.Lock()
						acked[ackedAt{r.Topic, r.Partition, r.Offset}] = string(r.Value)
						mu.Unlock()
					}
				})
				if i%20 == 19 {
					if err := cl.Flush(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			}
			if err := cl.Flush(ctx); err != nil {
				t.Error(err)
			}
		}()
	}

	// A consumer of expiring from its start, all along: it may be reset
	// forward past what retention removed, and must see no fetch error.
	var fetchErrs []error
	cctx, stopConsuming := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.ConsumeTopics("expiring"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		for cctx.Err() == nil {
			cl.PollFetches(cctx).EachError(func(_ string, _ int32, err error) {
				if !errors.Is(err, context.Canceled) && !errors.Is(err, kerr.OffsetOutOfRange) {
					fetchErrs = append(fetchErrs, err)
				}
			})
		}
	}()

	// Kill an agent, mid whatever it was doing, and restart it, four
	// times; before each kill the producers get 1,000 to 2,000 more
	// records acknowledged, so the jobs have new rows to work on.
	rng := rand.New(rand.NewPCG(1, 2))
	ackedNow := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for round := 0; round < 4; round++ {
		want := ackedNow() + 1000 + rng.IntN(1000)
		poll.Within(t, fmt.Sprintf("%d records acknowledged", want), 2*time.Minute, func() bool { return ackedNow() >= want })
		p := c.procs[round%len(c.procs)]
		p.kill()
		p.start()
	}
	stopProducing()
	producers.Wait()
	// expiring first, while its last records are younger than retention.
	check := func(topic string) {
		read := readTopic(t, c.addrs, topic)
		// Sampled after the read: a record acknowledged at or above these
		// was there all through the read.
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = starts.Error()
		}
		if err != nil {
			t.Fatalf("start offsets of %s: %v", topic, err)
		}
		mu.Lock()
		defer mu.Unlock()
		checkLifecycleRead(t, topic, read, starts, acked)
	}
	check("expiring")
	// Retention moved the log start of every partition of expiring that
	// has records, and goes on to move it under the consumer.
	poll.Within(t, "every log start of expiring moved", time.Minute, func() bool {
		starts, serr := adm.ListStartOffsets(ctx, "expiring")
		ends, eerr := adm.ListEndOffsets(ctx, "expiring")
		if serr != nil || eerr != nil || starts.Error() != nil || ends.Error() != nil {
			return false
		}
		ok := true
		ends.Each(func(e kadm.ListedOffset) {
			s, _ := starts.Lookup("expiring", e.Partition)
			ok = ok && (e.Offset == 0 || s.Offset > 0)
		})
		return ok
	})
	stopConsuming()
	<-consumed
	for i, err := range fetchErrs {
		if i < 5 {
			t.Errorf("the consumer reading from the start got a fetch error: %v", err)
		}
	}

	// Compaction and keyed compaction ran (under the kills, or once the
	// agents settled): rows of compacted and cleaned segments.
	poll.Within(t, "compacted rows in kept and cleaned rows in keyed", time.Minute, func() bool {
		return rowsIn(t, c.dbURL, "kept", "compacted/") > 0 && rowsIn(t, c.dbURL, "keyed", "cleaned/") > 0
	})
	check("kept")
	check("keyed")
	mu.Lock()
	t.Logf("acknowledged: %d records", len(acked))
	mu.Unlock()
	for _, p := range c.procs {
		p.stop()
	}
	checkIndexObjectsExist(t, c.mio, c.bucket, c.dbURL)
}

// rowsIn counts the index rows of topic whose segment key starts with
// prefix.
func rowsIn(t *testing.T, dbURL, topic, prefix string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM index_entries e JOIN segments s ON s.id = e.segment_id
		JOIN partitions p ON p.id = e.partition_id JOIN topics t ON t.id = p.topic_id
		WHERE t.name = $1 AND starts_with(s.key, $2)`, topic, prefix).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// ackedAt is where an acknowledgement put a record.
type ackedAt struct {
	topic     string
	partition int32
	offset    int64
}

// checkLifecycleRead checks what was read of topic from its start against
// what was acknowledged: offsets increase; a record read at an offset is
// the one acknowledged there (or one whose acknowledgement was lost), and
// appears once; every record acknowledged at or above the log start
// (starts, sampled after the read) was read, for keyed each key's last
// acknowledged record or a later one of that key.
func checkLifecycleRead(t *testing.T, topic string, read map[int32][]*kgo.Record, starts kadm.ListedOffsets, acked map[ackedAt]string) {
	t.Helper()
	unacked, total := 0, 0
	for p := range starts[topic] {
		start, _ := starts.Lookup(topic, p)
		if topic == "kept" && start.Offset != 0 {
			t.Fatalf("kept/%d: log start %d, with no retention", p, start.Offset)
		}
		last := int64(-1)
		keys := map[string]int64{} // key → offset of its last record read
		seen := map[string]int64{}
		present := map[int64]bool{}
		for _, r := range read[p] {
			if r.Offset <= last {
				t.Fatalf("%s/%d: offset %d after %d", topic, p, r.Offset, last)
			}
			last = r.Offset
			want, ok := acked[ackedAt{topic, p, r.Offset}]
			switch {
			case !ok:
				unacked++ // its produce failed at the client, or its ack was lost: it may be there
			case want != string(r.Value):
				t.Fatalf("%s/%d@%d holds %q; acknowledged there: %q", topic, p, r.Offset, r.Value, want)
			}
			if o, dup := seen[string(r.Value)]; dup {
				t.Fatalf("%s/%d: %q at %d and again at %d", topic, p, r.Value, o, r.Offset)
			}
			seen[string(r.Value)] = r.Offset
			keys[string(r.Key)] = r.Offset
			present[r.Offset] = true
		}
		lastAcked := map[string]int64{}
		for k, v := range acked {
			if k.topic != topic || k.partition != p || k.offset < start.Offset {
				continue
			}
			total++
			if topic == "keyed" {
				key := fmt.Sprintf("k%03d", seqOf(v)%150)
				if o, ok := lastAcked[key]; !ok || k.offset > o {
					lastAcked[key] = k.offset
				}
			} else if !present[k.offset] {
				t.Fatalf("%s/%d: acknowledged %q at offset %d (log start %d) is not there", topic, p, v, k.offset, start.Offset)
			}
		}
		for key, o := range lastAcked {
			// At its last acknowledged offset (checked above to hold
			// that record), or later (a record whose ack was lost).
			if got, ok := keys[key]; !ok || got < o {
				t.Fatalf("keyed/%d: key %s's last acknowledged record, at %d, is gone (last read: %d, %v)", p, key, o, got, ok)
			}
		}
	}
	t.Logf("%s: %d acknowledged records at or above the log start checked; %d records read that no acknowledgement named", topic, total, unacked)
}

// seqOf reads the sequence number at the end of a value "<topic>-<seq>".
func seqOf(v string) int {
	n, _ := strconv.Atoi(v[strings.LastIndexByte(v, '-')+1:])
	return n
}

// readTopic reads every partition of topic from its start to its end.
func readTopic(t *testing.T, addrs []string, topic string) map[int32][]*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[int32][]*kgo.Record{}
	for len(want) > 0 {
		// Retention may remove what is left to read: a partition whose
		// log start reached the end offset is read to its end.
		if starts, err := kadm.NewClient(admin).ListStartOffsets(ctx, topic); err == nil {
			starts.Each(func(o kadm.ListedOffset) {
				if end, ok := want[o.Partition]; ok && o.Err == nil && o.Offset >= end {
					delete(want, o.Partition)
				}
			})
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			t.Fatalf("%s: partitions %v not read to their end", topic, want)
		}
		fs.EachError(func(_ string, p int32, err error) {
			if !errors.Is(err, kerr.OffsetOutOfRange) && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("read %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], r)
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// checkIndexObjectsExist fails if an index row of the store at dbURL
// names an object the bucket does not hold: the garbage collector deleted
// what a row still references.
//
// The index is read before the bucket is listed, never after: an object
// is uploaded before its row commits, so an object written after the
// listing and swapped in before the query would look missing when it is
// not (that false alarm is what a listing-first check gave on a cluster
// still compacting). Read first, a row's object was in the bucket when
// the row was read, and leaves it only gc.grace after the row is gone;
// callers stop the agents first, so nothing moves at all.
func checkIndexObjectsExist(t *testing.T, mio *testenv.MinIOServer, bucket, dbURL string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT DISTINCT s.key FROM index_entries e JOIN segments s ON s.id = e.segment_id")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no index rows at all")
	}
	objects := make(map[string]bool)
	for obj := range mio.Client().ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("list bucket: %v", obj.Err)
		}
		objects[obj.Key[len(testenv.MinIOBucketPrefix)+1:]] = true
	}
	for _, k := range keys {
		if !objects[k] {
			t.Errorf("index row points at missing object %s", k)
		}
	}
	t.Logf("%d segment objects referenced by the index, %d objects in the bucket", len(keys), len(objects))
}
