package metastoretest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/siltstream/silt/metastore"
)

// testShareStates covers metastore.ShareStore's record states: acquiring
// (delivery counts, the in-flight bound), accepting, releasing,
// rejecting, gaps, renewing, the SPSO moving past finished records, lock
// expiry (back to AVAILABLE, or ARCHIVED at the delivery limit),
// releasing a member's records, moving the SPSO up to the log start,
// setting it, listing and deleting share partitions.
func testShareStates(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	key := metastore.SharePartitionKey{Group: "sg", Topic: metastore.TopicID{0xff, 1}, Partition: 2}
	const lock = 1000
	now := int64(1_000_000)
	acquire := func(member string, from, to, maxRecords int64) []metastore.AcquiredRange {
		t.Helper()
		got, _, err := s.AcquireShareRecords(ctx, key, metastore.ShareAcquire{
			Member: member, NowMs: now, LockMs: lock, MaxRecords: maxRecords, MaxInFlight: 20,
			DeliveryLimit: 3, From: from, To: to, InitialOffset: 10,
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	ack := func(member string, batches ...metastore.ShareAckBatch) []error {
		t.Helper()
		errs, err := s.AcknowledgeShareRecords(ctx, key, metastore.ShareAcknowledge{
			Member: member, NowMs: now, LockMs: lock, DeliveryLimit: 3, Batches: batches,
		})
		if err != nil {
			t.Fatal(err)
		}
		return errs
	}
	state := func() metastore.SharePartitionState {
		t.Helper()
		ps, err := s.SharePartitions(ctx, key.Group)
		if err != nil || len(ps) != 1 {
			t.Fatalf("SharePartitions: %+v, %v", ps, err)
		}
		return ps[0]
	}
	want := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %+v, want %+v", what, got, want)
		}
	}
	r := func(first, last int64, count int16) metastore.AcquiredRange {
		return metastore.AcquiredRange{First: first, Last: last, DeliveryCount: count}
	}
	one := func(first, last int64, typ int8) metastore.ShareAckBatch {
		return metastore.ShareAckBatch{First: first, Last: last, Types: []int8{typ}}
	}

	if errs := ack("a", one(10, 10, metastore.AckAccept)); !errors.Is(errs[0], metastore.ErrInvalidRecordState) {
		t.Fatalf("acknowledging in a share partition that does not exist: %v", errs)
	}
	// Created at the initial offset 10: offsets below it are not
	// acquired; the in-flight bound (20 past the SPSO) caps the rest.
	want("a acquires from 0", acquire("a", 0, 15, 3), []metastore.AcquiredRange{r(10, 12, 1)})
	want("b acquires the next", acquire("b", 10, 15, 100), []metastore.AcquiredRange{r(13, 14, 1)})
	want("nothing left in the window", acquire("c", 10, 15, 100), []metastore.AcquiredRange(nil))
	want("the in-flight bound", acquire("c", 15, 100, 100), []metastore.AcquiredRange{r(15, 29, 1)})
	// b may not acknowledge a's records; a batch is applied whole or not.
	if errs := ack("b", one(12, 13, metastore.AckAccept)); !errors.Is(errs[0], metastore.ErrInvalidRecordState) {
		t.Fatalf("b acknowledging a's record: %v, want ErrInvalidRecordState", errs)
	}
	// a accepts 10, releases 11, rejects 12 (one type per offset).
	errs := ack("a", metastore.ShareAckBatch{First: 10, Last: 12, Types: []int8{metastore.AckAccept, metastore.AckRelease, metastore.AckReject}})
	want("a's acknowledgements", errs, []error{nil})
	st := state()
	if st.StartOffset != 11 || st.NextAvailable() != 11 {
		t.Fatalf("SPSO %d, next available %d after accepting 10 and releasing 11; want 11, 11", st.StartOffset, st.NextAvailable())
	}
	if errs := ack("a", one(11, 11, metastore.AckAccept)); !errors.Is(errs[0], metastore.ErrInvalidRecordState) {
		t.Fatalf("accepting a released record: %v, want ErrInvalidRecordState", errs)
	}
	// The released record is delivered again, with delivery count 2.
	want("b acquires the released record", acquire("b", 10, 30, 100), []metastore.AcquiredRange{r(11, 11, 2)})
	// b accepts 11 and gaps 13..14: the SPSO moves past 10..14.
	want("b's acknowledgements", ack("b", one(11, 11, metastore.AckAccept), one(13, 14, metastore.AckGap)), []error{nil, nil})
	if st := state(); st.StartOffset != 15 || st.EndOffset() != 30 {
		t.Fatalf("SPSO %d, end %d; want 15, 30", st.StartOffset, st.EndOffset())
	}

	// c renews its lock on 15 and lets the rest lapse: they come back
	// with delivery count 2, 15 stays c's.
	now += lock / 2
	want("renew", ack("c", one(15, 15, metastore.AckRenew)), []error{nil})
	now += lock/2 + 1
	want("lapsed locks come back", acquire("d", 15, 30, 100), []metastore.AcquiredRange{r(16, 29, 2)})
	want("c accepts 15 within its renewed lock", ack("c", one(15, 15, metastore.AckAccept)), []error{nil})
	// d dies; its records come back at its lock's end, and at the
	// delivery limit (3) they are archived instead.
	now += lock
	want("delivered a third time", acquire("e", 16, 30, 100), []metastore.AcquiredRange{r(16, 29, 3)})
	now += lock
	if got := acquire("f", 15, 30, 100); got != nil {
		t.Fatalf("records past the delivery limit were delivered again: %+v", got)
	}
	if st := state(); st.StartOffset != 30 || len(st.Batches) != 0 {
		t.Fatalf("after archiving 16..29: %+v, want SPSO 30 and nothing in flight", st)
	}

	// A member's records are released when it goes.
	want("g acquires", acquire("g", 30, 35, 100), []metastore.AcquiredRange{r(30, 34, 1)})
	if err := s.ReleaseShareRecords(ctx, key.Group, "g", now, 3); err != nil {
		t.Fatal(err)
	}
	want("after g left", acquire("h", 30, 35, 100), []metastore.AcquiredRange{r(30, 34, 2)})

	// Retention moved the log start past the SPSO: it follows.
	got, _, err := s.AcquireShareRecords(ctx, key, metastore.ShareAcquire{
		Member: "h", NowMs: now, LockMs: lock, MaxRecords: 100, MaxInFlight: 20, DeliveryLimit: 3, From: 0, To: 42, LogStart: 40,
	})
	if err != nil || !reflect.DeepEqual(got, []metastore.AcquiredRange{r(40, 41, 1)}) {
		t.Fatalf("acquire after the log start moved to 40: %+v, %v", got, err)
	}
	if st := state(); st.StartOffset != 40 {
		t.Fatalf("SPSO %d, want the log start 40", st.StartOffset)
	}

	// Setting the SPSO forgets what was in flight; deleting forgets the
	// share partition.
	if err := s.SetShareStartOffset(ctx, key, 7); err != nil {
		t.Fatal(err)
	}
	if st := state(); st.StartOffset != 7 || len(st.Batches) != 0 || st.Key != key {
		t.Fatalf("after setting the SPSO to 7: %+v", st)
	}
	other := metastore.SharePartitionKey{Group: key.Group, Topic: key.Topic, Partition: 0}
	if err := s.SetShareStartOffset(ctx, other, 3); err != nil {
		t.Fatal(err)
	}
	ps, err := s.SharePartitions(ctx, key.Group)
	if err != nil || len(ps) != 2 || ps[0].Key != other || ps[1].Key != key {
		t.Fatalf("SharePartitions: %+v, %v; want partitions 0 and 2", ps, err)
	}
	if err := s.DeleteSharePartitions(ctx, key.Group, []metastore.SharePartitionKey{other}); err != nil {
		t.Fatal(err)
	}
	if ps, _ := s.SharePartitions(ctx, key.Group); len(ps) != 1 {
		t.Fatalf("after deleting partition 0: %+v", ps)
	}
	if err := s.DeleteSharePartitions(ctx, key.Group, nil); err != nil {
		t.Fatal(err)
	}
	if ps, err := s.SharePartitions(ctx, key.Group); len(ps) != 0 || err != nil {
		t.Fatalf("after deleting the group's share partitions: %+v, %v", ps, err)
	}
}

// testShareAcquireRace: members acquiring the same share partition at
// once, as agents serving their share fetches would, together acquire
// every record exactly once.
func testShareAcquireRace(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	key := metastore.SharePartitionKey{Group: "race", Topic: metastore.TopicID{7}, Partition: 0}
	const records, members = 400, 6
	owner := make([]string, records)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, members)
	for m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			member := fmt.Sprintf("m%d", m)
			for {
				got, _, err := s.AcquireShareRecords(ctx, key, metastore.ShareAcquire{
					Member: member, NowMs: 1, LockMs: 1 << 40, MaxRecords: 7, MaxInFlight: records,
					DeliveryLimit: 5, From: 0, To: records,
				})
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, r := range got {
					for o := r.First; o <= r.Last; o++ {
						if owner[o] != "" {
							mu.Unlock()
							errs <- fmt.Errorf("offset %d acquired by %s and %s", o, owner[o], member)
							return
						}
						owner[o] = member
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for o, m := range owner {
		if m == "" {
			t.Fatalf("offset %d never acquired", o)
		}
	}
}

// testGroupConfigs covers metastore.GroupConfigStore: configs of a group
// that does not exist, setting them, and the compare-and-set.
func testGroupConfigs(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	got, err := s.GroupConfig(ctx, "gc")
	if err != nil || len(got) != 0 {
		t.Fatalf("configs of a group never configured: %v, %v", got, err)
	}
	one := map[string]string{"share.auto.offset.reset": "earliest"}
	if err := s.SetGroupConfig(ctx, "gc", one, map[string]string{"x": "y"}); !errors.Is(err, metastore.ErrConfigChanged) {
		t.Fatalf("set from a config that is not stored: %v, want ErrConfigChanged", err)
	}
	if err := s.SetGroupConfig(ctx, "gc", one, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GroupConfig(ctx, "gc"); err != nil || !reflect.DeepEqual(got, one) {
		t.Fatalf("configs: %v, %v; want %v", got, err, one)
	}
	two := map[string]string{"share.auto.offset.reset": "latest", "share.record.lock.duration.ms": "15000"}
	if err := s.SetGroupConfig(ctx, "gc", two, nil); !errors.Is(err, metastore.ErrConfigChanged) {
		t.Fatalf("set from empty over a stored config: %v, want ErrConfigChanged", err)
	}
	if err := s.SetGroupConfig(ctx, "gc", two, one); err != nil {
		t.Fatal(err)
	}
	if err := s.SetGroupConfig(ctx, "gc", map[string]string{}, two); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GroupConfig(ctx, "gc"); err != nil || len(got) != 0 {
		t.Fatalf("after clearing: %v, %v", got, err)
	}
	if got, _ := s.GroupConfig(ctx, "other"); len(got) != 0 {
		t.Fatalf("another group's configs: %v", got)
	}
}
