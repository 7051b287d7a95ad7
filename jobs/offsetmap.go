package jobs

import (
	"crypto/md5"
	"encoding/binary"
)

// offsetMapSlotBytes is what one slot of an offsetMap takes: a 16-byte
// key digest and an 8-byte offset.
const offsetMapSlotBytes = md5.Size + 8

// offsetMapLoad is the share of slots an offsetMap fills before it counts
// as full, so that probing stays short.
const offsetMapLoad = 0.8

// offsetMap maps record keys to the latest offset seen for them, in a
// fixed amount of memory, as Kafka's SkimpyOffsetMap does: keys are
// stored as their MD5 digests (two keys with the same digest would be
// taken for one: with 128 bits, never in practice) in an open-addressing
// table allocated once. Once full it refuses new keys; the cleaner then
// cleans only up to what it mapped.
type offsetMap struct {
	digests [][md5.Size]byte
	offsets []int64 // -1: an empty slot
	size    int
	maxSize int
}

// DedupeMapKeys is how many keys keyed compaction's map of memBytes
// (compaction.dedupe.buffer.bytes) holds.
func DedupeMapKeys(memBytes int64) int64 {
	return int64(float64(offsetMapSlots(memBytes)) * offsetMapLoad)
}

func offsetMapSlots(memBytes int64) int { return max(int(memBytes/offsetMapSlotBytes), 16) }

// newOffsetMap returns a map using about memBytes (at least 16 slots).
func newOffsetMap(memBytes int64) *offsetMap {
	slots := offsetMapSlots(memBytes)
	m := &offsetMap{digests: make([][md5.Size]byte, slots), offsets: make([]int64, slots)}
	m.maxSize = int(float64(slots) * offsetMapLoad)
	m.reset()
	return m
}

// reset empties the map.
func (m *offsetMap) reset() {
	for i := range m.offsets {
		m.offsets[i] = -1
	}
	m.size = 0
}

// free is how many more keys the map takes.
func (m *offsetMap) free() int { return m.maxSize - m.size }

// slot returns the slot holding d, or the empty slot where it would go.
func (m *offsetMap) slot(d *[md5.Size]byte) int {
	i := int(binary.LittleEndian.Uint64(d[:8]) % uint64(len(m.offsets)))
	for m.offsets[i] >= 0 && m.digests[i] != *d {
		if i++; i == len(m.offsets) {
			i = 0
		}
	}
	return i
}

// put records offset as key's latest. It reports false, changing nothing,
// when key is new and the map is full.
func (m *offsetMap) put(key []byte, offset int64) bool {
	d := md5.Sum(key)
	i := m.slot(&d)
	if m.offsets[i] < 0 {
		if m.size >= m.maxSize {
			return false
		}
		m.size++
		m.digests[i] = d
	}
	m.offsets[i] = offset
	return true
}

// get returns key's latest offset, or -1.
func (m *offsetMap) get(key []byte) int64 {
	d := md5.Sum(key)
	return m.offsets[m.slot(&d)]
}
