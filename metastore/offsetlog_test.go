package metastore

import "testing"

// The partitions Kafka picks for these ids, from Java's String.hashCode
// (hello: 99162322; polygenelubricants: Integer.MIN_VALUE, which
// Utils.abs maps to 0; a surrogate pair counts as two code units).
func TestOffsetsPartition(t *testing.T) {
	for id, want := range map[string]int32{
		"":                       0,
		"hello":                  22,
		"polygenelubricants":     0,
		"my-group":               12,
		"grüppe-😀":               14,
		"console-consumer-12345": 6,
	} {
		if got := OffsetsPartition(id); got != want {
			t.Errorf("OffsetsPartition(%q) = %d, want %d", id, got, want)
		}
	}
}
