package metastoretest

import (
	"maps"
	"testing"

	"github.com/siltstream/silt/metastore"
)

// testPartitionBytes: a topic's partitions' stored bytes are the sums of
// their index rows' lengths; partitions without rows, other topics' rows
// and an unknown topic count nothing.
func testPartitionBytes(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	a := createTopic(t, s, "a", 3)
	b := createTopic(t, s, "b", 1)
	c := chunk(a.ID, 0, 1)
	c.Length = 700
	commit(t, s, "seg-1", c, chunk(a.ID, 1, 2), chunk(b.ID, 0, 5))
	c.Length = 300
	commit(t, s, "seg-2", c)
	got, err := s.PartitionBytes(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int32]int64{0: 1000, 1: 200}; !maps.Equal(got, want) {
		t.Fatalf("PartitionBytes(a) = %v, want %v", got, want)
	}
	got, err = s.PartitionBytes(ctx, metastore.TopicID{1})
	if err != nil || len(got) != 0 {
		t.Fatalf("PartitionBytes of an unknown topic = %v, %v; want nothing", got, err)
	}
}
